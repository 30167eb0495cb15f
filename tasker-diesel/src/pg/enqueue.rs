//! Transactional enqueue: a task created inside the caller's own
//! diesel-async transaction exists if and only if that transaction commits.

use std::future::Future;

use diesel::sql_query;
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tasker::store::{Created, NewTask, StoreError};
use tasker::{TaskRequest, Tasker};

use super::rows::create_one;
use super::PgStore;
use crate::AnyStore;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

impl PgStore {
    /// Writes `task` on the caller's connection, inside the caller's
    /// transaction (as a savepoint: a failure here rolls back only this
    /// write, and the caller's transaction goes on). The task becomes
    /// visible, and workers are woken (`NOTIFY` is delivered at commit),
    /// only when the caller commits; a rollback leaves no trace. Outside a
    /// transaction it commits at once. The caller's `search_path` is left
    /// as it was; the connection may use any schema settings.
    pub async fn create_task_in(
        &self,
        conn: &mut AsyncPgConnection,
        task: &NewTask,
    ) -> Result<Created, StoreError> {
        let schema = format!("\"{}\"", self.schema());
        let channel = self.channel.clone();
        conn.transaction(
            async move |conn| -> Result<Created, diesel::result::Error> {
                let before = sql_query("SELECT current_setting('search_path') AS value")
                    .get_result::<Setting>(conn)
                    .await?
                    .value;
                sql_query("SELECT set_config('search_path', $1, true) AS value")
                    .bind::<Text, _>(&schema)
                    .get_result::<Setting>(conn)
                    .await?;
                let created = create_one(conn, task, &channel).await?;
                sql_query("SELECT set_config('search_path', $1, true) AS value")
                    .bind::<Text, _>(&before)
                    .get_result::<Setting>(conn)
                    .await?;
                Ok(created)
            },
        )
        .await
        .map_err(|e| StoreError::database("creating a task in the caller's transaction", e))
    }
}

/// Creating a task inside your own diesel-async transaction on the same
/// PostgreSQL database: the task exists if and only if your transaction
/// commits, and workers are woken only after the commit.
///
/// ```no_run
/// use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
/// use tasker_diesel::CreateTaskIn;
///
/// async fn place_order(
///     tasker: &tasker::Tasker<tasker_diesel::PgStore>,
///     conn: &mut AsyncPgConnection,
/// ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     conn.transaction(async |conn| {
///         diesel::sql_query("INSERT INTO orders (id) VALUES (42)").execute(conn).await?;
///         let context = serde_json::json!({"order_id": 42});
///         let request = tasker::TaskRequest::new("ecommerce", "process_order", context);
///         tasker.create_task_in(conn, request).await?;
///         Ok(())
///     })
///     .await
/// }
/// ```
///
/// The request is checked as by [`Tasker::create_task`] before anything is
/// written. No `task.created` event is published (only the caller knows
/// whether it commits); the engine's later events (`task.started`, ...)
/// follow as usual. SQLite has no second writer to share a transaction
/// with: there, the method is an error saying so.
pub trait CreateTaskIn {
    /// Creates the task on `conn`, inside its transaction.
    fn create_task_in(
        &self,
        conn: &mut AsyncPgConnection,
        request: TaskRequest,
    ) -> impl Future<Output = Result<Created, tasker::Error>> + Send;
}

impl CreateTaskIn for Tasker<PgStore> {
    async fn create_task_in(
        &self,
        conn: &mut AsyncPgConnection,
        request: TaskRequest,
    ) -> Result<Created, tasker::Error> {
        let task = self.prepare_task(request)?;
        Ok(self.store().create_task_in(conn, &task).await?)
    }
}

impl CreateTaskIn for Tasker<AnyStore> {
    async fn create_task_in(
        &self,
        conn: &mut AsyncPgConnection,
        request: TaskRequest,
    ) -> Result<Created, tasker::Error> {
        let task = self.prepare_task(request)?;
        match self.store() {
            AnyStore::Postgres(pg) => Ok(pg.create_task_in(conn, &task).await?),
            #[allow(unreachable_patterns)] // when only PostgreSQL is compiled in
            _ => Err(StoreError::Invalid(
                "creating a task in the caller's transaction needs the PostgreSQL store; this \
                 engine runs on SQLite"
                    .to_owned(),
            )
            .into()),
        }
    }
}
