use tasker::prelude::*;

pub struct Approval;

#[task_handler]
impl Approval {
    #[step]
    async fn score(_ctx: &StepContext) -> StepResult<u32> {
        Ok(1)
    }

    #[step(depends_on = score, branches = [score, approve, audit, approve])]
    async fn route(_ctx: &StepContext) -> StepResult<String> {
        Ok("approve".into())
    }

    #[step(depends_on = route)]
    async fn approve(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = score)]
    async fn audit(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(branches = [decide])]
    async fn decide(_ctx: &StepContext) -> StepResult<String> {
        Ok("decide".into())
    }
}

fn main() {}
