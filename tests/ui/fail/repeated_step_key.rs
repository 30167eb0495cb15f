use tasker::prelude::*;

pub struct Keys;

#[task_handler]
impl Keys {
    #[step]
    async fn first(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = first, retry_limit = 2, depends_on = first)]
    async fn second(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
