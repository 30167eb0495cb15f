//! Example workflows for tasker.
//!
//! * [`orders::ProcessOrder`]: validate an order, reserve stock and charge
//!   the card in parallel, ship once both are done, then confirm by email.
//! * [`payouts::SettlePayout`]: verify each of a merchant's payout
//!   accounts (a fan-out, two at a time) while reconciling the day in
//!   checkpointed chunks (a resumable batch), then a decision: settle
//!   across the accounts, or hold for review and tell finance; the branch
//!   not taken ends `skipped`.
//!
//! The worker binary (`cargo run`) runs them; `tests/` runs them in tests.

pub mod orders;
pub mod payouts;
