use tasker::prelude::*;

pub struct Keys;

#[task_handler(version = "1.0.0", namespace = "a", version = "2.0.0")]
impl Keys {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
