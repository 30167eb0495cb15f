use tasker::prelude::*;

pub struct Selfish;

#[task_handler]
impl Selfish {
    #[step(depends_on = again)]
    async fn again(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
