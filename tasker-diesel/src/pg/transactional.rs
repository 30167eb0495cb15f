//! Transactional steps: a step's own writes and its completion record in
//! one PostgreSQL transaction.

use std::any::Any;

use diesel_async::pooled_connection::bb8::PooledConnection;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use tasker::store::{Completed, Completion, Outcome, StepTransaction, StoreError};
use tasker::StepId;

use super::alone::record_alone;
use super::PgStore;

/// An open transaction on a connection of the store's pool. Dropped
/// without a commit, the pool discards the connection, and PostgreSQL
/// rolls the transaction back.
pub(super) struct PgStepTransaction {
    conn: PooledConnection<'static, AsyncPgConnection>,
}

impl StepTransaction for PgStepTransaction {
    fn connection(&mut self) -> &mut (dyn Any + Send) {
        let conn: &mut AsyncPgConnection = &mut self.conn;
        conn
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl PgStore {
    pub(super) async fn begin_transaction_for_step(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Box<dyn StepTransaction>, StoreError> {
        let mut conn = self.pool.get_owned().await.map_err(|e| {
            StoreError::Unavailable(format!("no PostgreSQL connection available: {e}"))
        })?;
        AnsiTransactionManager::begin_transaction(&mut *conn)
            .await
            .map_err(|e| StoreError::database("opening a step's transaction", e))?;
        if !self.synchronous_commit {
            // The step's writes are acknowledged with its completion:
            // durable even when step results commit relaxed.
            conn.batch_execute("SET LOCAL synchronous_commit = on")
                .await
                .map_err(|e| StoreError::database("opening a step's transaction", e))?;
        }
        tracing::debug!(step = step_id.0, attempt, "step transaction opened");
        Ok(Box::new(PgStepTransaction { conn }))
    }

    pub(super) async fn complete_in_step_transaction(
        &self,
        transaction: Box<dyn StepTransaction>,
        completion: &Completion,
    ) -> Result<Completed, StoreError> {
        let Ok(tx) = transaction.into_any().downcast::<PgStepTransaction>() else {
            return Err(StoreError::Invalid(
                "this step transaction was not opened by this PostgreSQL store".to_owned(),
            ));
        };
        let mut conn = tx.conn;
        let Outcome::Complete(output) = &completion.outcome else {
            return Err(StoreError::Invalid(
                "only a successful attempt is completed in its transaction".to_owned(),
            ));
        };
        let completed = record_alone(&mut conn, (0, completion, output), &self.channel)
            .await
            .map_err(|e| e.into_store("recording a transactional step"))?;
        if completed.applied {
            AnsiTransactionManager::commit_transaction(&mut *conn)
                .await
                .map_err(|e| StoreError::database("committing a transactional step", e))?;
        } else {
            // The attempt is no longer the step's: its writes go too.
            AnsiTransactionManager::rollback_transaction(&mut *conn)
                .await
                .map_err(|e| StoreError::database("rolling back a stale transactional step", e))?;
        }
        Ok(completed)
    }
}

/// `ctx.db()` in a `#[step(transactional)]` step: the PostgreSQL
/// connection of the attempt's transaction. What the step writes through
/// it commits together with the step's completion record, or not at all.
///
/// ```no_run
/// use diesel_async::RunQueryDsl;
/// use tasker::prelude::*;
/// use tasker_diesel::StepDb;
///
/// pub struct Payouts;
///
/// #[task_handler(namespace = "docs_payouts")]
/// impl Payouts {
///     /// Books the payout; the row exists exactly when the step completed.
///     #[step(transactional)]
///     async fn book(ctx: &StepContext) -> StepResult<()> {
///         let mut conn = ctx.db().await?;
///         diesel::sql_query("INSERT INTO payouts (task_id) VALUES ($1)")
///             .bind::<diesel::sql_types::BigInt, _>(ctx.task_id().0)
///             .execute(&mut *conn)
///             .await
///             .map_err(|e| StepError::retryable(e.to_string()))?;
///         Ok(())
///     }
/// }
/// ```
pub trait StepDb {
    /// The connection, borrowed for as long as the guard lives.
    fn db(
        &self,
    ) -> impl std::future::Future<
        Output = Result<tasker::TransactionGuard<'_, AsyncPgConnection>, tasker::StepError>,
    > + Send;
}

impl<C: Sync> StepDb for tasker::StepContext<C> {
    async fn db(
        &self,
    ) -> Result<tasker::TransactionGuard<'_, AsyncPgConnection>, tasker::StepError> {
        self.transaction::<AsyncPgConnection>().await
    }
}
