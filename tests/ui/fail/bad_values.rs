use tasker::prelude::*;

pub struct Values;

#[task_handler]
impl Values {
    #[step(timeout = "thirty seconds", retry_limit = -1)]
    async fn first(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = "first")]
    async fn second(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(retryable = "no")]
    async fn third(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
