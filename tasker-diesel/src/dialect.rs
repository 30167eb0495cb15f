//! What differs between the two SQL dialects, so that a statement is
//! written once (in [`crate::retention`], [`crate::checkpoint`]) and each
//! backend supplies its [`Dialect`].

/// How a backend writes what differs between the two SQL dialects.
pub(crate) struct Dialect {
    /// Rewrites the `$n` parameters of a statement written here into the
    /// backend's own (`?n` on SQLite, where `$n` would be a named
    /// parameter numbered by appearance).
    pub(crate) params: fn(String) -> String,
    /// A bound epoch-milliseconds parameter compared with a time column.
    pub(crate) time_param: fn(usize) -> String,
    /// A time column as epoch milliseconds.
    pub(crate) ms: fn(&str) -> String,
    /// The text of the `class` field of a JSON column.
    pub(crate) error_class: fn(&str) -> String,
    /// What locks the selected task rows for the rest of the transaction
    /// and skips rows other transactions hold ("" where the transaction
    /// already holds the only write lock).
    pub(crate) lock_tasks: &'static str,
    /// What share-locks the selected rows for the rest of the transaction,
    /// so they cannot change under it ("" where the transaction already
    /// holds the only write lock).
    pub(crate) lock_shared: &'static str,
    /// A bound JSON text parameter stored into a JSON column.
    pub(crate) json_param: fn(usize) -> String,
    /// The current time as a value of a time column.
    pub(crate) now: &'static str,
    /// Whether `CROSS JOIN LATERAL (...)` is understood (PostgreSQL).
    pub(crate) lateral: bool,
}

/// `$n` -> `?n` (SQLite's numbered parameters); a `$` not followed by a
/// digit (as in the JSON path `'$.class'`) stays.
#[cfg(feature = "sqlite")]
pub(crate) fn numbered_params(sql: String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// The same text, for PostgreSQL.
#[cfg(feature = "postgres")]
pub(crate) fn same(sql: String) -> String {
    sql
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #[test]
    fn only_dollar_digits_become_numbered_parameters() {
        assert_eq!(
            super::numbered_params("a = $1 AND json_extract(e, '$.class') = $4".to_owned()),
            "a = ?1 AND json_extract(e, '$.class') = ?4"
        );
    }
}
