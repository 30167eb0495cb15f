use tasker::prelude::*;

/// Not deserializable: a configuration type must implement `Deserialize`.
pub struct Settings {
    pub url: String,
}

pub struct Payouts;

#[task_handler(namespace = "ui", config = Settings)]
impl Payouts {
    #[step]
    async fn book() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
