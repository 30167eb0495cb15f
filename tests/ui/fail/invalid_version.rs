use tasker::prelude::*;

pub struct Versioned;

#[task_handler(version = "2.1")]
impl Versioned {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
