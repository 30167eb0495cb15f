//! A decision with an enum output; branches and the steps after them,
//! taking `Option<T>` where a dependency may be skipped and `T` where the
//! step is skipped with it.
use serde::{Deserialize, Serialize};
use tasker::prelude::*;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    AutoApprove,
    ManualReview,
}

pub struct Approval;

#[task_handler(namespace = "ui_decisions")]
impl Approval {
    #[step]
    async fn score(_ctx: &StepContext) -> StepResult<u32> {
        Ok(7)
    }

    #[step(depends_on = score, branches = [auto_approve, manual_review])]
    async fn route(score: u32) -> StepResult<Vec<Route>> {
        Ok(if score > 5 { vec![Route::ManualReview] } else { vec![Route::AutoApprove] })
    }

    #[step(depends_on = route)]
    async fn auto_approve() -> StepResult<u32> {
        Ok(1)
    }

    #[step(depends_on = route)]
    async fn manual_review() -> StepResult<String> {
        Ok("manual".into())
    }

    #[step(depends_on = manual_review)]
    async fn notify(manual_review: String) -> StepResult<String> {
        Ok(manual_review)
    }

    #[step(depends_on = [score, notify])]
    async fn audit(score: u32, notify: Option<String>) -> StepResult<String> {
        Ok(format!("{score} {notify:?}"))
    }

    #[step(depends_on = [auto_approve, manual_review])]
    async fn finalize(auto_approve: Option<u32>, manual_review: Option<String>) -> StepResult<String> {
        Ok(format!("{auto_approve:?} {manual_review:?}"))
    }
}

fn main() {
    let handler = Approval::handler();
    assert_eq!(handler.steps().len(), 7);
}
