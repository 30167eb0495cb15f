//! A fan-out and its join type-check: the item is an element of the
//! source's list; the join receives the outputs as a `Vec`.
use tasker::prelude::*;

pub struct Invoice;

#[task_handler(namespace = "ui_fan_out")]
impl Invoice {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    #[step(depends_on = lines, for_each = lines, concurrency = 8)]
    async fn charge(lines: u32) -> StepResult<String> {
        Ok(lines.to_string())
    }

    #[step(depends_on = [lines, charge])]
    async fn total(lines: Vec<u32>, charge: Vec<String>) -> StepResult<usize> {
        Ok(lines.len() + charge.len())
    }
}

fn main() {
    let handler = Invoice::handler();
    let charge = &handler.steps()[1];
    assert_eq!(charge.for_each(), Some("lines"));
    assert_eq!(charge.concurrency(), Some(8));
    use tasker::fan_out::OnItemError;
    assert_eq!(charge.on_item_error(), OnItemError::Fail);
    assert_eq!(Refunds::handler().steps()[1].on_item_error(), OnItemError::Collect);
}

/// With `on_item_error = "collect"` the join receives one `Result` per
/// item; `StepResult<T>` is the same type.
pub struct Refunds;

#[task_handler(namespace = "ui_fan_out")]
impl Refunds {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    #[step(depends_on = lines, for_each = lines, on_item_error = "collect")]
    async fn refund(lines: u32) -> StepResult<String> {
        Ok(lines.to_string())
    }

    #[step(depends_on = refund)]
    async fn report(refund: Vec<Result<String, StepError>>) -> StepResult<usize> {
        Ok(refund.iter().filter(|r| r.is_ok()).count())
    }

    #[step(depends_on = refund)]
    async fn audit(refund: Vec<StepResult<String>>) -> StepResult<usize> {
        Ok(refund.len())
    }
}

