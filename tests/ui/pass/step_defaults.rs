//! `step_defaults` by `Self::` path, by a free function, and reading the
//! typed context.
use serde::{Deserialize, Serialize};
use tasker::prelude::*;
use tasker::Priority;

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub premium: bool,
}

pub struct Checkout;

#[task_handler(namespace = "ui", context = Order, step_defaults = Self::defaults)]
impl Checkout {
    #[step]
    async fn charge(ctx: &StepContext<Order>) -> StepResult<bool> {
        Ok(ctx.context().premium)
    }
}

impl Checkout {
    fn defaults(order: &Order, steps: &mut StepDefaults) {
        if order.premium {
            steps.step("charge").retry_limit(9);
        }
    }
}

fn rush(_: &serde_json::Value, steps: &mut StepDefaults) {
    for (_, settings) in steps.iter_mut() {
        settings.priority(Priority::Critical);
    }
}

pub struct Rush;

#[task_handler(
    namespace = "ui",
    step_defaults = rush,
    dependent_systems = ["dispatch.api"],
    metadata = { owner = "logistics", r#type = "rush" }
)]
impl Rush {
    #[step]
    async fn go() -> StepResult<()> {
        Ok(())
    }
}

fn main() {
    let defaults = Checkout::handler()
        .step_defaults(&serde_json::json!({"premium": true}))
        .unwrap();
    assert_eq!(defaults.get("charge").unwrap().get_retry_limit(), Some(9));
    let defaults = Rush::handler().step_defaults(&serde_json::json!({})).unwrap();
    assert_eq!(defaults.get("go").unwrap().get_priority(), Some(Priority::Critical));
    assert_eq!(Rush::handler().dependent_systems(), ["dispatch.api"]);
    assert_eq!(Rush::handler().metadata(), [("owner", "logistics"), ("type", "rush")]);
}
