//! Two handlers with the same namespace, name and version linked into one
//! binary: building the registry fails and names both.

use tasker::prelude::*;
use tasker::{Registry, RegistryError};

/// The first registration.
pub struct RefundV1;

#[task_handler(namespace = "billing", name = "refund", version = "1.0.0")]
impl RefundV1 {
    #[step]
    async fn refund() -> StepResult<()> {
        Ok(())
    }
}

/// A copy-paste of it with the same version.
pub struct RefundCopy;

#[task_handler(namespace = "billing", name = "refund", version = "1.0.0")]
impl RefundCopy {
    #[step]
    async fn refund_again() -> StepResult<()> {
        Ok(())
    }
}

/// A different version: no conflict.
pub struct RefundV2;

#[task_handler(namespace = "billing", name = "refund", version = "2.0.0")]
impl RefundV2 {
    #[step]
    async fn refund() -> StepResult<()> {
        Ok(())
    }
}

#[test]
fn duplicate_triples_fail_at_start_up_naming_both_sources() {
    let errors = Registry::from_inventory().unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let RegistryError::Duplicate { key, first, second } = &errors.0[0] else {
        panic!("expected a duplicate, got {errors}");
    };
    assert_eq!(key, "billing/refund@1.0.0");
    let mut sources = [first.as_str(), second.as_str()];
    sources.sort_unstable();
    assert!(
        sources[0].starts_with("`duplicates::RefundCopy` (tests/duplicates.rs:"),
        "{sources:?}"
    );
    assert!(
        sources[1].starts_with("`duplicates::RefundV1` (tests/duplicates.rs:"),
        "{sources:?}"
    );
    assert!(errors
        .to_string()
        .contains("give one of them another version or name"));
}
