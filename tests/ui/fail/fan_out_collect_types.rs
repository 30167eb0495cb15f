use tasker::prelude::*;

pub struct Refunds;

#[task_handler]
impl Refunds {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    #[step(depends_on = lines, for_each = lines, on_item_error = "collect")]
    async fn refund(lines: u32) -> StepResult<String> {
        Ok(lines.to_string())
    }

    /// A collecting fan-out's join receives `Vec<Result<String, StepError>>`.
    #[step(depends_on = refund)]
    async fn report(refund: Vec<String>) -> StepResult<usize> {
        Ok(refund.len())
    }
}

fn main() {}
