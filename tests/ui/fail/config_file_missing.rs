use tasker::prelude::*;

pub struct Payments;

#[task_handler(namespace = "ui", config_file = "config/nowhere.yaml")]
impl Payments {
    #[step]
    async fn charge() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
