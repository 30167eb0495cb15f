use tasker::prelude::*;

pub struct Signatures;

#[task_handler]
impl Signatures {
    #[step]
    async fn with_self(&self) -> StepResult<()> {
        Ok(())
    }

    #[step]
    async fn generic<T>(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = with_self)]
    async fn late_context(with_self: (), _ctx: &StepContext) -> StepResult<()> {
        Ok(with_self)
    }

    #[step(depends_on = with_self)]
    async fn pattern((a, b): ((), ())) -> StepResult<()> {
        Ok(a)
    }
}

fn main() {}
