//! `config_file` entries that do not fit the handler: an unknown key, a
//! misspelt step, `handler_config` without a type, in the file and in an
//! overlay.
use tasker::prelude::*;

pub struct Payments;

#[task_handler(namespace = "ui", version = "1.0.0", config_file = "../fixtures/typos.yaml")]
impl Payments {
    #[step]
    async fn charge() -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = charge)]
    async fn notify() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
