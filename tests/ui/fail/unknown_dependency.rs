use tasker::prelude::*;

pub struct Checkout;

#[task_handler]
impl Checkout {
    #[step]
    async fn validate(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = validat)]
    async fn charge(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = [charge, packing])]
    async fn ship(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
