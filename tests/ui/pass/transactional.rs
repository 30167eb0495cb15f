//! `transactional` alone or with a boolean; the flag reaches the definition.

use tasker::prelude::*;

pub struct Payouts;

#[task_handler(namespace = "ui")]
impl Payouts {
    #[step(transactional)]
    async fn book(ctx: &StepContext) -> StepResult<()> {
        // Any connection type: the store decides which one it hands out.
        let _ = ctx.transaction::<String>().await?;
        Ok(())
    }

    #[step(depends_on = book, transactional = false, retry_limit = 1)]
    async fn notify() -> StepResult<()> {
        Ok(())
    }
}

fn main() {
    let handler = Payouts::handler();
    assert!(handler.step("book").unwrap().transactional());
    assert!(!handler.step("notify").unwrap().transactional());
}
