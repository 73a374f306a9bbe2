//! Task storage. Every method takes the verified [`UserId`] and runs in its own transaction
//! that first sets `app.user_id` (the row-level-security setting) and then runs one statement
//! that is also scoped by `WHERE user_id = $1`: isolation twice over.

use std::time::Duration;

use deadpool_postgres::{Pool, PoolError};
use proto_shared::{SortOrder, StatusFilter, Task, TaskId, UserId};
use tokio_postgres::{error::SqlState, types::ToSql, IsolationLevel, Row};

use crate::domain::{Completion, ListParams, NewTask, TaskChanges};

/// Why the store could not answer. `Unavailable` is the database being away, too slow or
/// unable to do the work for now (503, retry later); `Internal` is anything else (500, a bug
/// or misconfiguration).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// One page of a list and the number of tasks matching its filter on all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub tasks: Vec<Task>,
    pub total: i64,
}

/// The task store over a connection pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// Client-side bound on one whole operation: covers a peer that vanished without closing
    /// the socket, which neither the pool nor statement_timeout would notice.
    op_timeout: Duration,
}

/// Longest a readiness probe waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

const SET_SCOPE: &str = "SELECT set_config('app.user_id', $1, true)";
const COLUMNS: &str = "id, user_id, title, description, completed, created_at, updated_at";

/// The list query for one sort order. A macro rather than `format!` so each variant is a
/// `&'static str`, prepared once per connection and cached.
macro_rules! list_sql {
    ($order_by:literal) => {
        concat!(
            "SELECT id, user_id, title, description, completed, created_at, updated_at FROM tasks ",
            "WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2) ",
            "ORDER BY ",
            $order_by,
            " LIMIT $3 OFFSET $4"
        )
    };
}

/// How many of a user's tasks match the status filter. `user_id` leads every index, so this
/// reads only the user's own entries (see bench/tasks/count.sh for what it costs).
const COUNT_SQL: &str =
    "SELECT count(*) FROM tasks WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2)";

fn list_sql(sort: SortOrder) -> &'static str {
    // Each ORDER BY matches one index of migration 0001 (read forwards or backwards).
    match sort {
        SortOrder::Created => list_sql!("created_at, id"),
        SortOrder::CreatedDesc => list_sql!("created_at DESC, id DESC"),
        SortOrder::Title => list_sql!("lower(title) COLLATE \"C\", id"),
        SortOrder::Updated => list_sql!("updated_at DESC, id DESC"),
    }
}

impl Store {
    /// A store over `pool`; each operation gives up (503) after `op_timeout`.
    pub fn new(pool: Pool, op_timeout: Duration) -> Self {
        Self { pool, op_timeout }
    }

    /// The pool, for health checks and metrics.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `GET /api/{user_id}/tasks`: one page, and how many of the user's tasks match the
    /// filter in all (for `X-Total-Count`). Both statements go out pipelined behind the
    /// scope in one round trip, in one repeatable-read snapshot, so the total and the page
    /// agree even while other requests write.
    pub async fn list(&self, user: &UserId, params: &ListParams) -> Result<Page, StoreError> {
        let completed = match params.status {
            StatusFilter::All => None,
            StatusFilter::Pending => Some(false),
            StatusFilter::Completed => Some(true),
        };
        let work = async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            let scope = client.prepare_cached(SET_SCOPE).await.map_err(db_error)?;
            let page = client
                .prepare_cached(list_sql(params.sort))
                .await
                .map_err(db_error)?;
            let count = client.prepare_cached(COUNT_SQL).await.map_err(db_error)?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_error)?;
            let user_id = user.as_str();
            let scope_params: [&(dyn ToSql + Sync); 1] = [&user_id];
            let page_params: [&(dyn ToSql + Sync); 4] =
                [&user_id, &completed, &params.limit, &params.offset];
            let count_params: [&(dyn ToSql + Sync); 2] = [&user_id, &completed];
            // As in `scoped`: try_join polls in order, so set_config is written first and
            // both reads run scoped; if it fails the transaction refuses the rest.
            let (_, rows, total) = tokio::try_join!(
                tx.execute(&scope, &scope_params),
                tx.query(&page, &page_params),
                tx.query_one(&count, &count_params),
            )
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(Page {
                tasks: rows.iter().map(task).collect(),
                total: total.get(0),
            })
        };
        tokio::time::timeout(self.op_timeout, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("operation timed out".into())))
    }

    /// `POST /api/{user_id}/tasks`. Returns once the row is committed.
    pub async fn create(&self, user: &UserId, new: &NewTask) -> Result<Task, StoreError> {
        let sql = format!(
            "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
        );
        let description = new.description.as_ref().map(|d| d.as_str());
        let rows = self
            .scoped(
                user,
                &sql,
                &[&user.as_str(), &new.title.as_str(), &description],
            )
            .await?;
        rows.first()
            .map(task)
            .ok_or_else(|| StoreError::Internal("INSERT returned no row".into()))
    }

    /// `GET /api/{user_id}/tasks/{id}`; `None` if absent or another user's.
    pub async fn get(&self, user: &UserId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2");
        let rows = self.scoped(user, &sql, &[&user.as_str(), &id]).await?;
        Ok(rows.first().map(task))
    }

    /// `PUT /api/{user_id}/tasks/{id}`: applies the present fields and bumps `updated_at`.
    pub async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        changes: &TaskChanges,
    ) -> Result<Option<Task>, StoreError> {
        // `clock_timestamp()`, not `now()` (the transaction's start): a write that waited for
        // another's row lock must not stamp a time before it; `GREATEST` keeps the stamp
        // moving forward even if the clock steps back.
        let sql = format!(
            "UPDATE tasks SET title = COALESCE($3, title), \
             description = CASE WHEN $4 THEN $5 ELSE description END, \
             completed = COALESCE($6, completed), \
             updated_at = GREATEST(clock_timestamp(), updated_at) \
             WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let title = changes.title.as_ref().map(|t| t.as_str());
        let set_description = changes.description.is_some();
        let description = changes
            .description
            .as_ref()
            .and_then(|d| d.as_ref().map(|d| d.as_str()));
        let params: [&(dyn ToSql + Sync); 6] = [
            &user.as_str(),
            &id,
            &title,
            &set_description,
            &description,
            &changes.completed,
        ];
        let rows = self.scoped(user, &sql, &params).await?;
        Ok(rows.first().map(task))
    }

    /// `PATCH /api/{user_id}/tasks/{id}/complete`: toggles, or sets the given state.
    pub async fn complete(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
    ) -> Result<Option<Task>, StoreError> {
        let sql = format!(
            "UPDATE tasks SET completed = COALESCE($3, NOT completed), \
             updated_at = GREATEST(clock_timestamp(), updated_at) \
             WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let state = match completion {
            Completion::Toggle => None,
            Completion::Set(state) => Some(state),
        };
        let rows = self
            .scoped(user, &sql, &[&user.as_str(), &id, &state])
            .await?;
        Ok(rows.first().map(task))
    }

    /// `DELETE /api/{user_id}/tasks/{id}`; `false` if absent or another user's.
    pub async fn delete(&self, user: &UserId, id: TaskId) -> Result<bool, StoreError> {
        let sql = "DELETE FROM tasks WHERE user_id = $1 AND id = $2 RETURNING id";
        let rows = self.scoped(user, sql, &[&user.as_str(), &id]).await?;
        Ok(!rows.is_empty())
    }

    /// One round trip through the pool, for `/readyz`: bounded by [`READY_TIMEOUT`] so a
    /// probe never outwaits its caller.
    pub async fn ping(&self) -> Result<(), StoreError> {
        tokio::time::timeout(READY_TIMEOUT.min(self.op_timeout), async {
            let client = self.pool.get().await.map_err(pool_error)?;
            client.simple_query("SELECT 1").await.map_err(db_error)?;
            Ok(())
        })
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("ping timed out".into())))
    }

    /// Runs `sql` in a transaction scoped to `user` and commits before returning its rows.
    async fn scoped(
        &self,
        user: &UserId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let work = async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            let scope = client.prepare_cached(SET_SCOPE).await.map_err(db_error)?;
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            let user_param: [&(dyn ToSql + Sync); 1] = [&user.as_str()];
            let tx = client.transaction().await.map_err(db_error)?;
            // Pipelined: try_join polls the set_config future first, which writes its message
            // before the statement's, so both go out in one round trip and run in that order.
            // If set_config fails the transaction is aborted and PostgreSQL refuses the
            // statement; it can never run unscoped. (And unscoped, the policy shows nothing.)
            let (_, rows) = tokio::try_join!(
                tx.execute(&scope, &user_param),
                tx.query(&statement, params)
            )
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(rows)
        };
        tokio::time::timeout(self.op_timeout, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("operation timed out".into())))
    }
}

fn task(row: &Row) -> Task {
    Task {
        id: row.get("id"),
        user_id: row.get("user_id"),
        title: row.get("title"),
        description: row.get("description"),
        completed: row.get("completed"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::PostCreateHook(deadpool_postgres::HookError::Message(message)) => {
            StoreError::Internal(message.into_owned())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Connection loss, timeouts and a database that cannot do the work now are "unavailable"
/// (503: the same request may succeed later); the rest is internal (500).
fn db_error(error: tokio_postgres::Error) -> StoreError {
    let unavailable = error.is_closed()
        || match error.code() {
            None => true, // I/O: the connection broke mid-request
            Some(code) => means_unavailable(code),
        };
    let text = match error.as_db_error() {
        // Code and message only: DETAIL can quote row values, which are user content.
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    };
    if unavailable {
        StoreError::Unavailable(text)
    } else {
        StoreError::Internal(text)
    }
}

/// Whether a SQLSTATE says the database cannot do the work now but may soon (or another
/// server may, after a failover), rather than that the statement or the schema is wrong.
/// Not the rest of class 40 (40002: a deferred constraint failing at commit) nor 57P04
/// (database_dropped): asking again would get the same answer.
fn means_unavailable(code: &SqlState) -> bool {
    match &code.code()[..2] {
        // connection_exception: the connection failed or was refused.
        "08" => true,
        // insufficient_resources: disk full, out of memory, too many connections.
        "53" => true,
        _ => [
            // statement_timeout: too slow this time, e.g. under load.
            SqlState::QUERY_CANCELED,
            // Shutting down, crashed, or still starting up: a restart or failover under way.
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            // The server ended an idle session; the next connection is a fresh one.
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
            SqlState::IDLE_SESSION_TIMEOUT,
            // A primary demoted during a failover refuses writes until clients reach the new one.
            SqlState::READ_ONLY_SQL_TRANSACTION,
            // Lost to a concurrent transaction, or a lock held elsewhere: nothing was written,
            // and the same request run again succeeds.
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(code: &str) -> bool {
        means_unavailable(&SqlState::from_code(code))
    }

    #[test]
    fn a_database_that_cannot_work_now_is_unavailable() {
        for code in [
            "08006", // connection_failure
            "53100", // disk_full
            "53200", // out_of_memory
            "53300", // too_many_connections
            "25006", // read_only_sql_transaction
            "40001", // serialization_failure
            "40P01", // deadlock_detected
            "55P03", // lock_not_available
            "57014", // query_canceled
            "57P01", // admin_shutdown
            "57P02", // crash_shutdown
            "57P03", // cannot_connect_now
            "57P05", // idle_session_timeout
            "25P03", // idle_in_transaction_session_timeout
        ] {
            assert!(unavailable(code), "{code} is unavailable (503)");
        }
    }

    #[test]
    fn a_statement_or_schema_at_fault_is_internal() {
        for code in [
            "23505", // unique_violation
            "40002", // transaction_integrity_constraint_violation
            "42501", // insufficient_privilege (row-level security)
            "42P01", // undefined_table
            "57P04", // database_dropped
            "XX000", // internal_error
        ] {
            assert!(!unavailable(code), "{code} is internal (500)");
        }
    }
}
