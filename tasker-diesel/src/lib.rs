//! The tasker [`Store`](tasker::Store) on Diesel.
//!
//! * `PgStore` (feature `postgres`): PostgreSQL through diesel-async and a
//!   bb8 pool, for many workers on many machines (`FOR UPDATE SKIP LOCKED`
//!   claims, `LISTEN/NOTIFY` wake-ups).
//! * `SqliteStore` (feature `sqlite`, on by default): an embedded SQLite
//!   file for one worker process with zero set-up; feature `bundled-sqlite`
//!   (on by default) compiles SQLite in, so no system library is needed.
//! * [`AnyStore`]: whichever of them is compiled in, chosen by URL with
//!   [`connect`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker::StoreError> {
//! let store = tasker_diesel::connect("sqlite://tasker.sqlite").await?;
//! // or, with feature `postgres`: tasker_diesel::connect("postgres://postgres@127.0.0.1/app")
//! # Ok(()) }
//! ```
//!
//! Features: `sqlite`, `bundled-sqlite` (default), `postgres`. At least one
//! of `sqlite` and `postgres` is needed.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("tasker-diesel needs at least one backend: enable feature `sqlite` or `postgres`");

mod activity;
mod any;
mod audit;
mod checkpoint;
mod dialect;
mod fan_out;
mod migrations;
mod operator;
#[cfg(feature = "postgres")]
mod pg;
mod retention;
mod rows;
mod skip;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod testing;
mod url;

pub use any::{
    connect, connect_configured, connect_read_only, connect_read_only_configured, AnyStore,
};
#[cfg(feature = "postgres")]
pub use pg::{CreateTaskIn, PgOptions, PgStore, StepDb};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use url::redact_url;
