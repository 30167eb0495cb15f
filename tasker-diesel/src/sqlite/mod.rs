//! The embedded SQLite store: one file, one process. Every operation runs as
//! one immediate transaction on a blocking thread.

mod claim;
mod complete;
mod fan_out;
mod primitives;
mod store;
mod writes;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{Connection, QueryableByName, SqliteConnection};
use tasker::store::StoreError;
use tokio::sync::Notify;

use crate::operator::{Tx, TxError};

/// The embedded SQLite store. One process owns the file: a second process
/// opening it gets a clear error. Any number of processes may open it
/// [read-only](SqliteStore::open_read_only) beside the owner.
pub struct SqliteStore {
    conn: Arc<Mutex<SqliteConnection>>,
    path: PathBuf,
    read_only: bool,
    wakeups: Arc<Notify>,
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[derive(QueryableByName)]
struct StepStateRow {
    #[diesel(sql_type = BigInt)]
    workflow_step_id: i64,
    #[diesel(sql_type = BigInt)]
    task_id: i64,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

#[derive(QueryableByName)]
struct TaskStateRow {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    unfinished_steps: i32,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, and takes an
    /// exclusive lock on `<path>.lock` for this process.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot open lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        if let Err(e) = lock.try_lock() {
            return Err(StoreError::Unavailable(match e {
                std::fs::TryLockError::WouldBlock => format!(
                    "the SQLite database {} is in use by another tasker process; SQLite runs one \
                     worker process at a time. Stop the other process, use another file, or use \
                     PostgreSQL (DATABASE_URL=postgres://...) to run several workers",
                    path.display()
                ),
                std::fs::TryLockError::Error(e) => {
                    format!("cannot lock {}: {e}", lock_path.display())
                }
            }));
        }
        let url = path.to_string_lossy().into_owned();
        let conn = tokio::task::spawn_blocking(move || open_connection(&url))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening SQLite failed: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            read_only: false,
            wakeups: Arc::new(Notify::new()),
            _lock: Some(lock),
        })
    }

    /// Opens an existing database file for reading only, beside the process
    /// that owns it (a running worker): no lock is taken, nothing is
    /// created, and every write is refused by SQLite (`query_only`). A
    /// missing file is an error that says so.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tasker::StoreError> {
    /// use tasker::Store;
    /// let store = tasker_diesel::SqliteStore::open_read_only("tasker.sqlite").await?;
    /// println!("{:?}", store.task_counts().await?);
    /// # Ok(()) }
    /// ```
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(StoreError::Unavailable(format!(
                "there is no SQLite database at {}: check the path, or create it with `migrate` \
                 (or by running a worker)",
                path.display()
            )));
        }
        let url = path.to_string_lossy().into_owned();
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = SqliteConnection::establish(&url).map_err(|e| {
                StoreError::Unavailable(format!("cannot open SQLite database {url}: {e}"))
            })?;
            conn.batch_execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot configure SQLite database {url}: {e}"))
                })?;
            Ok::<_, StoreError>(conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("opening SQLite failed: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            read_only: true,
            wakeups: Arc::new(Notify::new()),
            _lock: None,
        })
    }

    /// Whether this store was opened with [`open_read_only`](Self::open_read_only).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let conn = open_connection(":memory:")?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: PathBuf::from(":memory:"),
            read_only: false,
            wakeups: Arc::new(Notify::new()),
            _lock: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one immediate transaction on a blocking thread.
    async fn tx<T: Send + 'static>(
        &self,
        doing: &'static str,
        work: impl FnOnce(&mut SqliteConnection) -> Tx<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.read_only {
            return Err(StoreError::Unavailable(format!(
                "{doing}: the SQLite database {} was opened read-only",
                self.path.display()
            )));
        }
        self.run(doing, true, work).await
    }

    /// Runs `work`, which only reads, in one deferred transaction (one
    /// consistent snapshot, no write lock: a reader never waits for the
    /// worker that owns the file).
    async fn read<T: Send + 'static>(
        &self,
        doing: &'static str,
        work: impl FnOnce(&mut SqliteConnection) -> Tx<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run(doing, false, work).await
    }

    async fn run<T: Send + 'static>(
        &self,
        doing: &'static str,
        immediate: bool,
        work: impl FnOnce(&mut SqliteConnection) -> Tx<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            if immediate {
                conn.immediate_transaction(|conn| work(conn))
            } else {
                conn.transaction(|conn| work(conn))
            }
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("{doing}: the database thread failed: {e}"),
            source: None,
        })?
        .map_err(|e| match e {
            TxError::Diesel(e) => StoreError::database(doing, e),
            TxError::Store(e) => e,
        })
    }
}

fn open_connection(url: &str) -> Result<SqliteConnection, StoreError> {
    let mut conn = SqliteConnection::establish(url)
        .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {url}: {e}")))?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot configure SQLite database {url}: {e}")))?;
    Ok(conn)
}
