use serde::{Deserialize, Serialize};
use tasker::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub cents: u64,
}

pub struct Checkout;

/// `validate` records problems; it does not return them.
#[task_handler(namespace = "ui", context = Order, validate = Self::check)]
impl Checkout {
    #[step]
    async fn charge() -> StepResult<()> {
        Ok(())
    }

    fn check(order: &Order) -> Result<(), String> {
        if order.cents == 0 {
            return Err("free".into());
        }
        Ok(())
    }
}

fn main() {}
