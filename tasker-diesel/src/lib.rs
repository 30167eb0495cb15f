//! The tasker [`Store`](tasker::Store) on Diesel.
//!
//! * [`PgStore`]: PostgreSQL through diesel-async and a bb8 pool, for many
//!   workers on many machines (`FOR UPDATE SKIP LOCKED` claims,
//!   `LISTEN/NOTIFY` wake-ups).
//! * [`SqliteStore`]: an embedded SQLite file (bundled, no system library),
//!   for one worker process with zero set-up.
//! * [`AnyStore`]: either, chosen by URL with [`connect`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker::StoreError> {
//! let store = tasker_diesel::connect("sqlite://tasker.sqlite").await?;
//! // or: tasker_diesel::connect("postgres://postgres@127.0.0.1/app").await?;
//! # Ok(()) }
//! ```

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

mod any;
mod operator;
mod pg;
mod rows;
mod sqlite;
pub mod testing;

pub use any::{connect, AnyStore};
pub use pg::{PgOptions, PgStore};
pub use sqlite::SqliteStore;

pub(crate) const MIGRATIONS_POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub(crate) const MIGRATIONS_SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
