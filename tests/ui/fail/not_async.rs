use tasker::prelude::*;

pub struct Blocking;

#[task_handler]
impl Blocking {
    #[step]
    fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
