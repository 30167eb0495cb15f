use tasker::prelude::*;

pub struct Payouts;

#[task_handler(namespace = "ui")]
impl Payouts {
    #[step(transactional = "yes")]
    async fn book() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
