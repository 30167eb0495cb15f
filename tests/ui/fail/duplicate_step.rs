use tasker::prelude::*;

pub struct Twice;

#[task_handler]
impl Twice {
    #[step]
    async fn send(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step]
    async fn send(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
