//! Order processing: a diamond-shaped workflow.
//!
//! ```text
//!                 validate_order
//!                 /            \
//!   reserve_inventory      charge_payment
//!                 \            /      \
//!                   ship_order         |
//!                         \            |
//!                        send_confirmation
//! ```
//!
//! The payment gateway and the warehouse are shared resources registered on
//! the runner or worker, so tests can swap them for test doubles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

/// The task context: one customer order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id in the shop.
    pub order_id: i64,
    /// Where the confirmation goes.
    pub customer_email: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// The card token to charge.
    pub card_token: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Stock keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, in cents.
    pub unit_price_cents: i64,
}

/// Output of `validate_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatedOrder {
    /// Sum of the lines, in cents.
    pub total_cents: i64,
    /// Number of items.
    pub item_count: u32,
}

/// Output of `reserve_inventory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// The warehouse's reservation id.
    pub reservation_id: String,
}

/// Output of `charge_payment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The gateway's transaction id.
    pub transaction_id: String,
    /// Amount charged, in cents.
    pub amount_cents: i64,
}

/// Output of `ship_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// Output of `send_confirmation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Who was emailed.
    pub sent_to: String,
    /// The sender, from the step's configuration.
    pub sent_from: String,
    /// The email's subject line.
    pub subject: String,
}

/// An in-memory payment gateway. Cards whose token starts with `declined`
/// are declined; the first `flaky_failures` charges fail with a transient
/// error, as a real gateway sometimes does.
#[derive(Debug, Default)]
pub struct PaymentGateway {
    flaky_failures: AtomicU32,
    charges: AtomicU32,
}

/// Why the gateway refused a charge.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined: retrying will not help.
    #[error("card {0} was declined")]
    Declined(String),
    /// The gateway is temporarily unavailable.
    #[error("payment gateway unavailable (503)")]
    Unavailable,
}

impl PaymentGateway {
    /// A gateway whose first `n` charges fail transiently.
    pub fn flaky(n: u32) -> Self {
        PaymentGateway {
            flaky_failures: AtomicU32::new(n),
            charges: AtomicU32::new(0),
        }
    }

    /// Charges `amount_cents` to `card_token`.
    pub fn charge(&self, card_token: &str, amount_cents: i64) -> Result<Receipt, PaymentError> {
        if card_token.starts_with("declined") {
            return Err(PaymentError::Declined(card_token.to_owned()));
        }
        let remaining = self.flaky_failures.load(Ordering::SeqCst);
        if remaining > 0 {
            self.flaky_failures.store(remaining - 1, Ordering::SeqCst);
            return Err(PaymentError::Unavailable);
        }
        let n = self.charges.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Receipt {
            transaction_id: format!("txn_{n:06}"),
            amount_cents,
        })
    }

    /// Successful charges so far.
    pub fn charges(&self) -> u32 {
        self.charges.load(Ordering::SeqCst)
    }
}

/// An in-memory warehouse with stock per SKU.
#[derive(Debug, Default)]
pub struct Warehouse {
    stock: Mutex<HashMap<String, u32>>,
}

impl Warehouse {
    /// A warehouse holding `stock`.
    pub fn with_stock<'a>(stock: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        Warehouse {
            stock: Mutex::new(stock.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        }
    }

    /// Reserves every line or none. `Err` names the first short SKU.
    pub fn reserve(&self, order_id: i64, lines: &[OrderLine]) -> Result<Reservation, String> {
        let mut stock = self
            .stock
            .lock()
            .map_err(|_| "warehouse lock poisoned".to_owned())?;
        for line in lines {
            let available = stock.get(&line.sku).copied().unwrap_or(0);
            if available < line.quantity {
                return Err(format!(
                    "only {available} of {} in stock, {} ordered",
                    line.sku, line.quantity
                ));
            }
        }
        for line in lines {
            *stock.get_mut(&line.sku).expect("checked above") -= line.quantity;
        }
        Ok(Reservation {
            reservation_id: format!("res_{order_id}"),
        })
    }

    /// Units of `sku` left.
    pub fn available(&self, sku: &str) -> u32 {
        self.stock
            .lock()
            .map(|s| s.get(sku).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// The confirmation email's settings: `handler_config` of the
/// `send_confirmation` step in the configuration file (see
/// `examples/tasker.yaml`). Every field has a default, so the workflow runs
/// without a file too.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// The `From:` address.
    pub sender: String,
    /// Prefix of every subject line.
    pub subject_prefix: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            sender: "orders@shop.example".to_owned(),
            subject_prefix: "Order".to_owned(),
        }
    }
}

/// Processes a customer order: payment and stock in parallel, then
/// shipping and a confirmation email.
pub struct ProcessOrder;

#[task_handler(
    namespace = "ecommerce",
    version = "1.0.0",
    context = Order,
    // The entries for this handler in the worker's file are checked as it compiles.
    config_file = "tasker.yaml",
    metadata = { owner = "checkout-team" }
)]
impl ProcessOrder {
    /// Checks the order has lines with positive quantities and prices.
    #[step(retryable = false)]
    async fn validate_order(ctx: &StepContext<Order>) -> StepResult<ValidatedOrder> {
        let order = ctx.context();
        if order.lines.is_empty() {
            return Err(StepError::permanent(format!(
                "order {} has no lines",
                order.order_id
            )));
        }
        let mut total_cents = 0;
        let mut item_count = 0;
        for line in &order.lines {
            if line.quantity == 0 || line.unit_price_cents <= 0 {
                return Err(StepError::permanent(format!(
                    "order {}: line {} needs a positive quantity and price",
                    order.order_id, line.sku
                )));
            }
            total_cents += i64::from(line.quantity) * line.unit_price_cents;
            item_count += line.quantity;
        }
        Ok(ValidatedOrder {
            total_cents,
            item_count,
        })
    }

    /// Reserves stock for every line in the warehouse.
    #[step(depends_on = validate_order)]
    async fn reserve_inventory(ctx: &StepContext<Order>) -> StepResult<Reservation> {
        let order = ctx.context();
        ctx.resource::<Warehouse>()?
            .reserve(order.order_id, &order.lines)
            .permanent()
    }

    /// Charges the order total to the customer's card.
    #[step(
        depends_on = validate_order,
        retry_limit = 5,
        timeout = "30s",
        dependent_systems = ["payment-gateway"]
    )]
    async fn charge_payment(
        ctx: &StepContext<Order>,
        validate_order: ValidatedOrder,
    ) -> StepResult<Receipt> {
        let gateway = ctx.resource::<PaymentGateway>()?;
        match gateway.charge(&ctx.context().card_token, validate_order.total_cents) {
            Ok(receipt) => Ok(receipt),
            Err(declined @ PaymentError::Declined(_)) => {
                Err(StepError::permanent(declined.to_string()).with_class("PaymentDeclined"))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Books the shipment once stock is reserved and payment taken.
    #[step(depends_on = [reserve_inventory, charge_payment])]
    async fn ship_order(
        ctx: &StepContext<Order>,
        reserve_inventory: Reservation,
    ) -> StepResult<Shipment> {
        Ok(Shipment {
            tracking_number: format!(
                "TRK-{}-{}",
                ctx.context().order_id,
                reserve_inventory.reservation_id
            ),
        })
    }

    /// Emails the customer the receipt and tracking number.
    #[step(
        depends_on = [ship_order, charge_payment],
        config = EmailConfig,
        dependent_systems = ["email"]
    )]
    async fn send_confirmation(
        ctx: &StepContext<Order>,
        ship_order: Shipment,
        charge_payment: Receipt,
    ) -> StepResult<Confirmation> {
        let email = ctx.handler_config::<EmailConfig>()?;
        Ok(Confirmation {
            sent_to: ctx.context().customer_email.clone(),
            sent_from: email.sender.clone(),
            subject: format!(
                "{} {} shipped: {} (paid {:.2}, {})",
                email.subject_prefix,
                ctx.context().order_id,
                ship_order.tracking_number,
                charge_payment.amount_cents as f64 / 100.0,
                charge_payment.transaction_id
            ),
        })
    }
}

/// A sample order: two widgets and a gadget, paid with `card_token`.
pub fn sample_order(order_id: i64, card_token: &str) -> Order {
    Order {
        order_id,
        customer_email: format!("customer{order_id}@example.com"),
        lines: vec![
            OrderLine {
                sku: "widget".into(),
                quantity: 2,
                unit_price_cents: 1_250,
            },
            OrderLine {
                sku: "gadget".into(),
                quantity: 1,
                unit_price_cents: 4_999,
            },
        ],
        card_token: card_token.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn validate_order_is_an_ordinary_function() {
        let ctx = StepContext::new(sample_order(7, "tok_visa"));
        let validated = ProcessOrder::validate_order(&ctx).await.unwrap();
        assert_eq!(validated.total_cents, 2 * 1_250 + 4_999);
        assert_eq!(validated.item_count, 3);

        let mut empty = sample_order(8, "tok_visa");
        empty.lines.clear();
        let err = ProcessOrder::validate_order(&StepContext::new(empty))
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.message(), "order 8 has no lines");
    }

    #[tokio::test]
    async fn a_declined_card_is_a_permanent_error() {
        let ctx = StepContext::new(sample_order(9, "declined_card"))
            .with_resource(PaymentGateway::default());
        let validated = ValidatedOrder {
            total_cents: 100,
            item_count: 1,
        };
        let err = ProcessOrder::charge_payment(&ctx, validated)
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.class(), "PaymentDeclined");
    }
}
