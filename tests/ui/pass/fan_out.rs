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
}
