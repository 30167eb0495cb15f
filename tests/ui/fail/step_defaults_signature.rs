use serde::{Deserialize, Serialize};
use tasker::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub premium: bool,
}

pub struct Checkout;

/// `step_defaults` receives the handler's context type, not a JSON value.
#[task_handler(namespace = "ui", context = Order, step_defaults = Self::defaults)]
impl Checkout {
    #[step]
    async fn charge(ctx: &StepContext<Order>) -> StepResult<bool> {
        Ok(ctx.context().premium)
    }
}

impl Checkout {
    fn defaults(order: &serde_json::Value, steps: &mut StepDefaults) {
        let _ = (order, steps);
    }
}

fn main() {}
