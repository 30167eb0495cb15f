//! Qualified attribute paths, spelled-out result types, type aliases and a
//! generic context type all work; only `tasker` is needed as a dependency.

use std::collections::BTreeMap;

type Counts = BTreeMap<String, u64>;
type Out<T> = Result<T, tasker::StepError>;

pub struct Report;

#[tasker::task_handler(namespace = "reports", name = "daily_report", version = "1.0.0-rc.1", context = BTreeMap<String, u64>)]
impl Report {
    #[tasker::step]
    async fn count(ctx: &tasker::StepContext<BTreeMap<String, u64>>) -> Result<Counts, tasker::StepError> {
        Ok(ctx.context().clone())
    }

    #[tasker::step(depends_on = count)]
    async fn total(count: BTreeMap<String, u64>) -> Out<u64> {
        Ok(count.values().sum())
    }
}

fn main() {
    use tasker::TaskHandler;
    let handler = Report::handler();
    assert_eq!(handler.key(), "reports/daily_report@1.0.0-rc.1");
    assert_eq!(handler.context_type(), "BTreeMap<String, u64>");
    let err = handler.check_context(&serde_json::json!({"a": "x"})).unwrap_err();
    assert_eq!(err.path, "a");
}
