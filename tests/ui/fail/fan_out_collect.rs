use tasker::prelude::*;

pub struct Refunds;

#[task_handler]
impl Refunds {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    /// A misspelt policy.
    #[step(depends_on = lines, for_each = lines, on_item_error = "colect")]
    async fn refund(lines: u32) -> StepResult<String> {
        Ok(lines.to_string())
    }

    /// A policy without a fan-out.
    #[step(depends_on = lines, on_item_error = "collect")]
    async fn notify(lines: Vec<u32>) -> StepResult<usize> {
        Ok(lines.len())
    }

    /// Not a string.
    #[step(depends_on = lines, for_each = lines, on_item_error = collect)]
    async fn audit(lines: u32) -> StepResult<u32> {
        Ok(lines)
    }
}

fn main() {}
