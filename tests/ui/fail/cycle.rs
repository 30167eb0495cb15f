use tasker::prelude::*;

pub struct Loop;

#[task_handler]
impl Loop {
    #[step]
    async fn start(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = [start, c])]
    async fn a(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = a)]
    async fn b(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = b)]
    async fn c(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
