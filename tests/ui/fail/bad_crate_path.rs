use tasker::prelude::*;

pub struct Elsewhere;

#[task_handler(crate = "not a path")]
impl Elsewhere {
    #[step]
    async fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {
    let _ = Elsewhere::handler();
}
