use tasker::prelude::*;

pub struct Keys;

#[task_handler(namespce = "payments", retries = 3)]
impl Keys {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
