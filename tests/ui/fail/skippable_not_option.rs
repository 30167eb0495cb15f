use tasker::prelude::*;

pub struct Approval;

#[task_handler]
impl Approval {
    #[step(branches = [auto_approve, manual_review])]
    async fn route(_ctx: &StepContext) -> StepResult<String> {
        Ok("auto_approve".into())
    }

    #[step(depends_on = route)]
    async fn auto_approve(_ctx: &StepContext) -> StepResult<u32> {
        Ok(1)
    }

    #[step(depends_on = route)]
    async fn manual_review(_ctx: &StepContext) -> StepResult<String> {
        Ok("manual".into())
    }

    /// Runs when either branch ran, so each may be missing.
    #[step(depends_on = [auto_approve, manual_review])]
    async fn finalize(auto_approve: Option<u32>, manual_review: String) -> StepResult<String> {
        Ok(format!("{auto_approve:?} {manual_review}"))
    }
}

fn main() {}
