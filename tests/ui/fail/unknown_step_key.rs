use tasker::prelude::*;

pub struct Keys;

#[task_handler]
impl Keys {
    #[step(retry_limt = 3, after = work)]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
