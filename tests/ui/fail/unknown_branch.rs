use tasker::prelude::*;

pub struct Approval;

#[task_handler]
impl Approval {
    #[step(branches = [auto_aprove, manual_review, refund])]
    async fn route(_ctx: &StepContext) -> StepResult<String> {
        Ok("auto_approve".into())
    }

    #[step(depends_on = route)]
    async fn auto_approve(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = route)]
    async fn manual_review(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
