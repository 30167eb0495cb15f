//! A diamond with typed edges, every step key, doc comments, helper
//! functions in the impl, and steps called as ordinary functions.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

#[derive(Debug, Serialize, Deserialize)]
pub struct Order {
    pub order_id: i64,
    pub amount_cents: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Validated {
    pub amount_cents: i64,
}

pub struct ProcessOrder;

/// Processes one order.
#[task_handler(namespace = "payments", version = "2.1.0", context = Order)]
impl ProcessOrder {
    /// Checks the order exists
    /// and is payable.
    #[step]
    async fn validate_order(ctx: &StepContext<Order>) -> StepResult<Validated> {
        Ok(Validated {
            amount_cents: Self::positive(ctx.context().amount_cents)?,
        })
    }

    #[step(
        depends_on = validate_order,
        retry_limit = 5,
        retryable = true,
        timeout = "1m 30s",
        events = ["payment.processed", "payment.risk_flagged"]
    )]
    async fn charge(validate_order: Validated) -> StepResult<String> {
        Ok(format!("charged {}", validate_order.amount_cents))
    }

    #[step(depends_on = validate_order, retryable = false)]
    pub async fn reserve(_ctx: &StepContext<Order>) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    #[step(depends_on = [charge, reserve, validate_order])]
    async fn ship(
        ctx: &StepContext<Order>,
        reserve: Vec<u32>,
        mut charge: String,
    ) -> StepResult<(i64, usize, String)> {
        charge.push('!');
        Ok((ctx.context().order_id, reserve.len(), charge))
    }

    /// Not a step: an ordinary helper.
    fn positive(cents: i64) -> StepResult<i64> {
        if cents > 0 {
            Ok(cents)
        } else {
            Err(StepError::permanent("amount must be positive"))
        }
    }
}

fn main() {
    let handler = ProcessOrder::handler();
    assert_eq!(handler.key(), "payments/process_order@2.1.0");
    assert_eq!(handler.description(), "Processes one order.");
    assert_eq!(handler.context_type(), "Order");
    assert_eq!(handler.graph().levels(), vec![vec!["validate_order"], vec!["charge", "reserve"], vec!["ship"]]);

    let validate = handler.step("validate_order").unwrap();
    assert_eq!(validate.description(), "Checks the order exists\nand is payable.");
    assert_eq!(validate.output_type(), "Validated");
    let charge = handler.step("charge").unwrap();
    assert_eq!(charge.depends_on(), ["validate_order"]);
    assert_eq!(charge.reads(), ["validate_order"]);
    assert_eq!(charge.retry_limit(), Some(5));
    assert_eq!(charge.retryable(), Some(true));
    assert_eq!(charge.timeout(), Some(Duration::from_secs(90)));
    assert_eq!(charge.events(), ["payment.processed", "payment.risk_flagged"]);
    let ship = handler.step("ship").unwrap();
    assert_eq!(ship.depends_on(), ["charge", "reserve", "validate_order"]);
    assert_eq!(ship.reads(), ["reserve", "charge"]);
    assert_eq!(ship.output_type(), "(i64, usize, String)");
    assert_eq!(handler.step("reserve").unwrap().retryable(), Some(false));

    // Steps stay ordinary functions.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ctx = StepContext::new(Order { order_id: 1, amount_cents: 250 });
    let validated = rt.block_on(ProcessOrder::validate_order(&ctx)).unwrap();
    assert_eq!(validated, Validated { amount_cents: 250 });
    assert_eq!(rt.block_on(ProcessOrder::charge(validated)).unwrap(), "charged 250");
}
