use tasker::prelude::*;

pub struct Named;

#[task_handler(namespace = "Payments-EU", name = "process order")]
impl Named {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

#[allow(non_snake_case)]
pub struct BadStep;

#[task_handler]
impl BadStep {
    #[step]
    #[allow(non_snake_case)]
    async fn Work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
