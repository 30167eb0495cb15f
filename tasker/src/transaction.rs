//! The transaction of a `#[step(transactional)]` attempt: what a store
//! opens, the step writes in, and the store commits with the completion.
//! Depends on nothing else in the crate, so steps and stores can both name
//! it.

/// The transaction of a `#[step(transactional)]` attempt, shared between
/// the engine and the step's context.
pub type SharedTransaction = std::sync::Arc<tokio::sync::Mutex<Option<Box<dyn StepTransaction>>>>;

/// The connection of a transactional step's transaction, borrowed from its
/// context (see [`StepContext::transaction`](crate::StepContext::transaction)).
pub type TransactionGuard<'a, T> = tokio::sync::MappedMutexGuard<'a, T>;

/// An open database transaction a `#[step(transactional)]` step writes in;
/// the store commits it together with the step's completion record, or
/// rolls it back. Dropped without either, it is rolled back.
pub trait StepTransaction: Send + 'static {
    /// The connection, for the step to downcast to its driver's type (e.g.
    /// diesel-async's `AsyncPgConnection`).
    fn connection(&mut self) -> &mut (dyn std::any::Any + Send);

    /// The store's own type, to finish the transaction.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

impl std::fmt::Debug for dyn StepTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepTransaction")
    }
}
