use tasker::prelude::*;

pub struct Payouts;

#[task_handler(namespace = "ui")]
impl Payouts {
    #[step(config = "payouts.yaml")]
    async fn book() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
