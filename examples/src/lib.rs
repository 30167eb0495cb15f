//! Example workflows for tasker.
//!
//! * [`orders::ProcessOrder`]: validate an order, reserve stock and charge
//!   the card in parallel, ship once both are done, then confirm by email.
//! * [`payouts::SettlePayout`]: reconcile a merchant's day in checkpointed
//!   chunks (a resumable batch), then a decision: settle, or hold for
//!   review and tell finance; the branch not taken ends `skipped`.
//!
//! The worker binary (`cargo run`) runs them; `tests/` runs them in tests.

pub mod orders;
pub mod payouts;
