//! The PostgreSQL store: diesel-async with a bb8 pool. Hot paths (create,
//! claim, complete) are single statements with data-modifying CTEs: one
//! round trip each, atomic without an explicit transaction.

mod alone;
mod claim;
mod connection;
mod enqueue;
mod fan_out;
mod housekeeping;
mod primitives;
mod reads;
mod rows;
mod sql;
mod store;
mod successes;
mod transactional;

use std::sync::Arc;
use std::time::Duration;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_query;
use diesel::sql_types::Text;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tasker::store::{OperatorAction, StoreError};
use tokio::sync::Notify;

use crate::operator::{self, TxError};
use connection::listen;
pub use enqueue::CreateTaskIn;
use primitives::PgOps;
pub use transactional::StepDb;

/// Options of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The schema holding tasker's tables (created by `migrate`). Lowercase
    /// letters, digits and `_`.
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// `true` (the default): every write waits for its WAL flush. `false`:
    /// claims, step results and lease changes commit without waiting
    /// (`synchronous_commit = off`); task creation and operator actions
    /// still wait. After a crash of the PostgreSQL *server* the last few
    /// hundred milliseconds of step results may be lost, and those steps
    /// run again, which at-least-once steps allow; nothing is corrupted
    /// and no created task is lost. Roughly halves a chain's per-step time.
    pub synchronous_commit: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: "public".to_owned(),
            pool_size: 10,
            synchronous_commit: true,
        }
    }
}

/// The PostgreSQL store: many workers on many machines.
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    /// The pool's size: how many connections the store may use at once.
    pool_size: u32,
    synchronous_commit: bool,
    schema: String,
    channel: String,
    url: String,
    wakeups: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish()
    }
}

fn db(doing: &'static str) -> impl Fn(diesel::result::Error) -> StoreError {
    move |e| StoreError::database(doing, e)
}

/// A hand-written statement whose text never changes, marked safe to keep
/// prepared: diesel treats every `sql_query` as dynamic SQL and re-plans it
/// on each execution, which for the multi-CTE hot paths costs more than
/// running them. PostgreSQL then plans each prepared statement once per
/// connection (or keeps custom plans where they are better).
pub(super) struct Prepared<Q>(pub(super) Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl PgStore {
    /// Connects with default options (schema `public`, 10 connections).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects with `options`. Starts a listener connection for wake-ups.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.schema.is_empty()
            || !options
                .schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Unavailable(format!(
                "invalid schema name {:?}: use lowercase letters, digits and `_`",
                options.schema
            )));
        }
        let schema = options.schema.clone();
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        let setup_schema = schema.clone();
        let commit = if options.synchronous_commit {
            "on"
        } else {
            "off"
        };
        config.custom_setup = Box::new(move |url| {
            let schema = setup_schema.clone();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
                conn.batch_execute(&format!(
                    "SET search_path TO \"{schema}\"; SET synchronous_commit = {commit}"
                ))
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(conn)
            })
        });
        // Fail early, with a clear message, when the server is unreachable
        // (the pool would retry until its timeout).
        drop(AsyncPgConnection::establish(url).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}; is the server running and the URL right?",
                crate::redact_url(url)
            ))
        })?);
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("connecting to PostgreSQL failed: {e}"))
            })?;
        let channel = format!("tasker_work_{schema}");
        let wakeups = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(
            url.to_owned(),
            channel.clone(),
            Arc::clone(&wakeups),
        ));
        Ok(PgStore {
            pool,
            pool_size: options.pool_size,
            synchronous_commit: options.synchronous_commit,
            schema,
            channel,
            url: url.to_owned(),
            wakeups,
            listener,
        })
    }

    /// The schema holding tasker's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unavailable(format!("no PostgreSQL connection available: {e}"))
        })
    }

    async fn operator_tx(&self, action: OperatorAction, actor: &str) -> Result<(), TxError> {
        let mut conn = self.conn().await.map_err(TxError::Store)?;
        let channel = self.channel.clone();
        let actor = actor.to_owned();
        let durable = !self.synchronous_commit;
        conn.transaction(async move |conn| -> Result<(), TxError> {
            if durable {
                // Operator actions are acknowledged to a person: durable.
                conn.batch_execute("SET LOCAL synchronous_commit = on")
                    .await?;
            }
            operator::apply(
                &mut PgOps {
                    conn,
                    channel: &channel,
                },
                &action,
                &actor,
            )
            .await?;
            sql_query("SELECT pg_notify($1, '')")
                .bind::<Text, _>(&channel)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }
}
