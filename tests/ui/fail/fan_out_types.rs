use tasker::prelude::*;

pub struct Invoice;

#[task_handler]
impl Invoice {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    /// The item is a `u32`, not the list.
    #[step(depends_on = lines, for_each = lines)]
    async fn charge(lines: Vec<u32>) -> StepResult<String> {
        Ok(format!("{lines:?}"))
    }

    /// The join receives `Vec<String>`.
    #[step(depends_on = charge)]
    async fn total(charge: String) -> StepResult<String> {
        Ok(charge)
    }
}

fn main() {}
