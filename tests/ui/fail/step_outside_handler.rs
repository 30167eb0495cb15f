use tasker::prelude::*;

pub struct Plain;

impl Plain {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
