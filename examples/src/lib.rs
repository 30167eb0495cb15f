//! Example workflows for tasker.
//!
//! * [`orders::ProcessOrder`]: validate an order, reserve stock and charge
//!   the card in parallel, ship once both are done, then confirm by email.
//!
//! The worker binary (`cargo run`) runs them; `tests/` runs them in tests.

pub mod orders;
