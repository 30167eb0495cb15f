//! Test support: an engine on an embedded store, and a fresh PostgreSQL
//! database per test.
//!
//! Run a workflow end to end, durably, without a server:
//!
//! ```
//! use std::time::Duration;
//! use tasker::prelude::*;
//!
//! pub struct Hello;
//!
//! #[task_handler(namespace = "docs_embedded")]
//! impl Hello {
//!     #[step]
//!     async fn greet(ctx: &StepContext) -> StepResult<String> {
//!         Ok(format!("hello {}", ctx.context()["name"].as_str().unwrap_or("world")))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tasker = tasker_diesel::testing::embedded(|builder| builder).await.unwrap();
//! let task = tasker
//!     .run_task(Hello::request(serde_json::json!({"name": "Ada"})), Duration::from_secs(10))
//!     .await
//!     .unwrap();
//! assert_eq!(task.state, tasker::TaskState::Complete);
//! assert_eq!(task.steps[0].output, Some(serde_json::json!("hello Ada")));
//! # });
//! ```
//!
//! With feature `postgres`, [`TestDatabase`] gives a test a PostgreSQL
//! database of its own.

#[cfg(feature = "postgres")]
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
#[cfg(feature = "postgres")]
use tasker::StoreError;
#[cfg(feature = "sqlite")]
use tasker::{Tasker, TaskerBuilder};

#[cfg(feature = "sqlite")]
use crate::SqliteStore;

/// An engine on a private, migrated, in-memory SQLite database, serving
/// every handler linked in; `configure` adds resources and settings.
#[cfg(feature = "sqlite")]
pub async fn embedded(
    configure: impl FnOnce(TaskerBuilder<SqliteStore>) -> TaskerBuilder<SqliteStore>,
) -> Result<Tasker<SqliteStore>, tasker::Error> {
    let store = SqliteStore::in_memory().await?;
    configure(Tasker::builder(store).migrate(true).configure(|c| {
        c.poll_interval = std::time::Duration::from_millis(50);
    }))
    .build()
    .await
}

#[cfg(feature = "postgres")]
/// The server tests use: `TASKER_TEST_DATABASE_URL`, or the local default.
pub fn server_url() -> String {
    std::env::var("TASKER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[cfg(feature = "postgres")]
/// A database created for one test and dropped (with its connections) when
/// this value is dropped, even if the test panicked.
///
/// ```no_run
/// # async fn demo() -> Result<(), tasker::StoreError> {
/// let db = tasker_diesel::testing::TestDatabase::create().await?;
/// let store = tasker_diesel::PgStore::connect(db.url()).await?;
/// // ... the database is dropped when `db` is.
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

#[cfg(feature = "postgres")]
impl TestDatabase {
    /// Creates `tasker_test_<random>` on the [`server_url`] server.
    pub async fn create() -> Result<Self, StoreError> {
        let admin_url = server_url();
        let name = format!("tasker_test_{}_{:08x}", std::process::id(), fastrand_u32());
        let mut conn = AsyncPgConnection::establish(&admin_url)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot reach the test PostgreSQL server at {admin_url}: {e}; start it or set \
                 TASKER_TEST_DATABASE_URL"
                ))
            })?;
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| StoreError::database("creating a test database", e))?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or(admin_url.clone());
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(feature = "postgres")]
fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

#[cfg(feature = "postgres")]
impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; do the work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async move {
                let mut conn = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)".replace("{}", &name),
                )
                .execute(&mut conn)
                .await
                .ok()?;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
