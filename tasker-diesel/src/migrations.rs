//! The embedded migrations of both backends, and the one reading of "what
//! is applied, what is pending" they share.

use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use tasker::store::{MigrationStatus, StoreError};

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Compares the versions a database recorded (`applied_versions`, empty
/// when it has no migrations table) with the migrations embedded in this
/// binary. A recorded version this binary does not know (the database was
/// migrated by a newer tasker) is listed as applied under its version.
pub(crate) fn status<DB: Backend>(
    embedded: &EmbeddedMigrations,
    applied_versions: &[String],
) -> Result<MigrationStatus, StoreError> {
    let known = MigrationSource::<DB>::migrations(embedded).map_err(|e| StoreError::Database {
        message: format!("reading the embedded migrations failed: {e}"),
        source: None,
    })?;
    let mut status = MigrationStatus::default();
    let mut known_versions = Vec::with_capacity(known.len());
    for migration in &known {
        let version = migration.name().version().to_string();
        let name = migration.name().to_string();
        if applied_versions.contains(&version) {
            status.applied.push(name);
        } else {
            status.pending.push(name);
        }
        known_versions.push(version);
    }
    status.applied.extend(
        applied_versions
            .iter()
            .filter(|v| !known_versions.contains(v))
            .map(|v| format!("{v} (unknown to this binary)")),
    );
    Ok(status)
}

/// The names of migrations just applied, from diesel's versions.
pub(crate) fn names<DB: Backend>(
    embedded: &EmbeddedMigrations,
    versions: &[diesel::migration::MigrationVersion<'_>],
) -> Vec<String> {
    let known = MigrationSource::<DB>::migrations(embedded).unwrap_or_default();
    versions
        .iter()
        .map(|version| {
            known
                .iter()
                .find(|m| m.name().version() == *version)
                .map_or_else(|| version.to_string(), |m| m.name().to_string())
        })
        .collect()
}
