use tasker::prelude::*;

pub struct Mismatch;

#[task_handler]
impl Mismatch {
    #[step]
    async fn count(_ctx: &StepContext) -> StepResult<u32> {
        Ok(1)
    }

    #[step(depends_on = count)]
    async fn describe(_ctx: &StepContext, count: String) -> StepResult<String> {
        Ok(count)
    }
}

fn main() {}
