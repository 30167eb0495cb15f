//! Every `#[task_handler]` key is optional.

use tasker::prelude::*;

pub struct HTTPHealthCheck;

#[task_handler]
impl HTTPHealthCheck {
    #[step]
    async fn ping(ctx: &StepContext) -> StepResult<bool> {
        Ok(ctx.context().get("url").is_some())
    }

    #[step(depends_on = [ping])]
    async fn record(ping: bool) -> StepResult<()> {
        let _ = ping;
        Ok(())
    }

    #[step(depends_on = [])]
    async fn independent() -> StepResult<()> {
        Ok(())
    }
}

fn main() {
    let handler = HTTPHealthCheck::handler();
    assert_eq!(handler.namespace(), "default");
    assert_eq!(handler.name(), "http_health_check");
    assert_eq!(handler.version().to_string(), "0.1.0");
    assert_eq!(handler.context_type(), "serde_json::Value");
    assert_eq!(handler.description(), "");
    assert_eq!(handler.step("ping").unwrap().retry_limit(), None);
    assert_eq!(handler.graph().roots(), ["ping", "independent"]);
    // The context type defaults to JSON: any JSON value is a valid context.
    assert!(handler.check_context(&serde_json::json!({"url": "http://x"})).is_ok());
}
