//! Test support: a fresh PostgreSQL database per test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker::StoreError> {
//! let db = tasker_diesel::testing::TestDatabase::create().await?;
//! let store = tasker_diesel::PgStore::connect(db.url()).await?;
//! // ... the database is dropped when `db` is.
//! # Ok(()) }
//! ```

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tasker::StoreError;

/// The server tests use: `TASKER_TEST_DATABASE_URL`, or the local default.
pub fn server_url() -> String {
    std::env::var("TASKER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped (with its connections) when
/// this value is dropped, even if the test panicked.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

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

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

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
