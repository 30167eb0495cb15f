//! `config_file`: every key the engine reads, other handlers and versions
//! left alone, overlays checked too.
use serde::Deserialize;
use tasker::prelude::*;

#[derive(Deserialize)]
pub struct Gateway {
    pub base_url: String,
}

#[derive(Deserialize)]
pub struct Charge {
    pub capture: bool,
}

pub struct Payments;

#[task_handler(namespace = "ui", version = "1.0.0", config = Gateway, config_file = "../fixtures/payments.yaml")]
impl Payments {
    #[step(config = Charge)]
    async fn charge() -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = charge)]
    async fn notify() -> StepResult<()> {
        Ok(())
    }
}

/// Version 2 has other steps; the file's entries name other versions.
pub struct PaymentsV2;

#[task_handler(namespace = "ui", name = "payments", version = "2.0.0", config_file = "../fixtures/versions.yaml")]
impl PaymentsV2 {
    #[step]
    async fn settle() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
