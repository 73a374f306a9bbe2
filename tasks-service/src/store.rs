//! Task storage. Every method takes the verified [`UserId`] and runs in its own transaction
//! that first sets `app.user_id` (the row-level-security setting; with the role and the
//! timeouts, when the login could bypass the policy) and then runs one statement that is also
//! scoped by `WHERE user_id = $1`: isolation twice over.

use std::{
    ops::{Deref, DerefMut},
    sync::Arc,
    time::Duration,
};

use deadpool_postgres::{ClientWrapper, Object, Pool, PoolError, Status, TimeoutType};
use proto_shared::{SortOrder, StatusFilter, Task, TaskId, UserId};
use tokio_postgres::{error::SqlState, types::ToSql, IsolationLevel, Row};

use crate::{
    db::SessionPins,
    domain::{Completion, ListParams, NewTask, TaskChanges},
    migrations::{self, RowSecurityLapse},
};

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
    /// Whether each transaction must also switch role and set its timeouts locally.
    pins: SessionPins,
    /// [`SET_SCOPE`] with the pins' settings as further columns: one statement still.
    scope_pinned: Arc<str>,
    /// Client-side bound on one whole operation: covers a peer that vanished without closing
    /// the socket, which neither the pool nor statement_timeout would notice.
    op_timeout: Duration,
}

/// Longest a readiness probe waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The first statement of every transaction: its user, for the policy. When the login could
/// bypass row-level security, [`Store::scope_sql`] adds the role and the timeouts.
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

/// Runs `$attempt`, an expression of a future using `$client: &mut ClientWrapper`, on a pooled
/// connection, the whole (the wait for a connection included) bounded by the operation
/// timeout; a connection that did not answer within it is closed, not reused
/// ([`Lease::discard`]). A macro rather than
/// a function taking a closure: a future borrowing the closure's argument cannot be named in
/// a bound, and async closures' futures are not found `Send` here (higher-ranked lifetimes).
///
/// If the attempt fails with SQLSTATE 0A000, which is how PostgreSQL refuses a prepared
/// statement whose result type a schema change altered ("cached plan must not change result
/// type", for good, on every connection that cached it), the connection's statement cache is
/// emptied and the attempt runs once more, preparing afresh. Running it again is safe because
/// the failed attempt changed nothing: every operation prepares outside any transaction (Parse
/// and Describe change no data) and runs its statements inside one explicit transaction
/// ([`list_on`], [`scoped_on`]), and a 0A000 is an error response from the server (never an
/// I/O error, whose outcome would be unknown). A statement that errs aborts its transaction,
/// which then cannot commit: the attempt returns before `commit` and the dropped transaction
/// sends ROLLBACK; had COMMIT itself been refused, nothing would have been committed either.
/// The stale-plan error itself is raised when the statement is bound, before it runs. Other
/// 0A000 errors are retried too (the message follows the server's locale, so only the code is
/// matched): harmless, they fail again.
macro_rules! run {
    ($store:expr, |$client:ident| $attempt:expr) => {{
        let store: &Store = $store;
        let deadline = tokio::time::Instant::now() + store.op_timeout;
        async {
            let client = tokio::time::timeout_at(deadline, store.pool.get())
                .await
                .map_err(|_| timed_out())?
                .map_err(pool_error)?;
            let mut lease = Lease(client);
            // The lease is borrowed for one attempt at a time, so that a timed-out one can
            // still be discarded.
            let mut outcome = {
                let $client: &mut ClientWrapper = &mut lease;
                tokio::time::timeout_at(deadline, $attempt).await
            };
            if outcome
                .as_ref()
                .is_ok_and(|o| o.as_ref().is_err_and(is_stale_plan))
            {
                tracing::info!("a cached statement's result type changed: preparing it afresh");
                lease.statement_cache.clear();
                outcome = {
                    let $client: &mut ClientWrapper = &mut lease;
                    tokio::time::timeout_at(deadline, $attempt).await
                };
            }
            match outcome {
                Ok(outcome) => outcome.map_err(db_error),
                Err(_) => {
                    lease.discard();
                    Err(timed_out())
                }
            }
        }
        .await
    }};
}

impl Store {
    /// A store over `pool`, whose connection set-up records in `pins` whether the role must be
    /// switched; each operation gives up (503) after `op_timeout`.
    pub fn new(pool: Pool, pins: SessionPins, op_timeout: Duration) -> Self {
        let scope_pinned = format!("{SET_SCOPE}, {}", pins.local_settings()).into();
        Self {
            pool,
            pins,
            scope_pinned,
            op_timeout,
        }
    }

    /// The statement that opens every transaction. Read after a connection was taken, so
    /// after the pool's first connection set-up has found whether the login needs
    /// [`crate::db::RLS_ROLE`]. If it does, the transaction switches to it (and sets its
    /// timeouts) itself, in the same statement and round trip: behind a transaction-mode
    /// pooler the server connection it runs on may never have seen the session's `SET ROLE`.
    /// If not, the statement is the plain scope.
    fn scope_sql(&self) -> &str {
        if self.pins.role_needed() {
            &self.scope_pinned
        } else {
            SET_SCOPE
        }
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
        run!(self, |client| list_on(
            client,
            self.scope_sql(),
            user,
            completed,
            params
        ))
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

    /// One round trip through the pool, bounded by [`READY_TIMEOUT`] so a probe never
    /// outwaits its caller. Any failure is an error, a pool that is merely busy included
    /// (start-up uses this: an idle pool that cannot reach the database must not start), and
    /// so is row-level security found not in force.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self.ping_within(self.pool.timeouts().wait).await {
            Ok(None) => Ok(()),
            Ok(Some(lapse)) => Err(StoreError::Internal(lapse.to_string())),
            Err(e) => Err(e.into_store_error()),
        }
    }

    /// For `/readyz`: whether this instance can serve requests. [`Readiness::Busy`] when every
    /// connection the pool may open is open and in use (checked first, or found by a wait for
    /// one timing out while connections are in use): the database answered each of them, and
    /// each is held by an operation bounded by the operation timeout, after which a connection
    /// that stopped answering is closed rather than reused ([`Lease`]). So busy does not hide
    /// a dead database for longer than that timeout: the next probe then finds no connection,
    /// or one that fails. Anything else must be a fresh round trip: a connect or query error,
    /// a probe timeout, or no connection at all (the wait timed out while none is open, every
    /// slot taken by connects under way) is not ready. The round trip is the catalog check of
    /// row-level security: a table that lost it is [`Readiness::Unguarded`], not ready (a busy
    /// pool skips the check, as it skips the round trip, until a probe finds it idle).
    pub async fn readiness(&self) -> Result<Readiness, StoreError> {
        if saturated(&self.pool.status()) {
            return Ok(Readiness::Busy);
        }
        // Wait for a connection at most half the probe's budget, leaving the rest for the
        // connect and the query, so that a wait timing out is told apart from the rest.
        let budget = READY_TIMEOUT.min(self.op_timeout);
        match self.ping_within(Some(budget / 2)).await {
            Ok(None) => Ok(Readiness::Ready),
            Ok(Some(lapse)) => Ok(Readiness::Unguarded(lapse)),
            Err(PingError::Busy) if self.pool.status().size > 0 => Ok(Readiness::Busy),
            Err(e) => Err(e.into_store_error()),
        }
    }

    /// One round trip on a pooled connection, waiting at most `wait` for one; the whole bounded
    /// by [`READY_TIMEOUT`] (and the operation timeout). The round trip is the catalog check
    /// of row-level security on `tasks` ([`migrations::row_security_lapse`]): what it finds
    /// amiss, if anything, is the answer.
    async fn ping_within(
        &self,
        wait: Option<Duration>,
    ) -> Result<Option<RowSecurityLapse>, PingError> {
        let mut timeouts = self.pool.timeouts();
        timeouts.wait = wait;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT.min(self.op_timeout);
        let ping_timed_out = || PingError::Failed(StoreError::Unavailable("ping timed out".into()));
        let client = match tokio::time::timeout_at(deadline, self.pool.timeout_get(&timeouts)).await
        {
            Err(_) => return Err(ping_timed_out()),
            Ok(Ok(client)) => Lease(client),
            Ok(Err(PoolError::Timeout(TimeoutType::Wait))) => return Err(PingError::Busy),
            Ok(Err(e)) => return Err(PingError::Failed(pool_error(e))),
        };
        match tokio::time::timeout_at(deadline, migrations::row_security_lapse(&client)).await {
            Ok(answer) => answer.map_err(|e| PingError::Failed(db_error(e))),
            Err(_) => {
                client.discard();
                Err(ping_timed_out())
            }
        }
    }

    /// Runs `sql` in a transaction scoped to `user` and commits before returning its rows.
    async fn scoped(
        &self,
        user: &UserId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        run!(self, |client| scoped_on(
            client,
            self.scope_sql(),
            user,
            sql,
            params
        ))
    }
}

/// What [`Store::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A connection answered a round trip just now, and row-level security is in force.
    Ready,
    /// Every connection the pool may open is open and in use by a request.
    Busy,
    /// A connection answered, but row-level security on `tasks` is not in force (not ready).
    Unguarded(RowSecurityLapse),
}

/// Every connection the pool may hold exists and is in use.
fn saturated(status: &Status) -> bool {
    status.size > 0 && status.size >= status.max_size && status.available == 0
}

/// Why a ping did not succeed: no connection freed up in time, or anything else.
enum PingError {
    Busy,
    Failed(StoreError),
}

impl PingError {
    fn into_store_error(self) -> StoreError {
        match self {
            Self::Busy => StoreError::Unavailable("no pooled connection free".into()),
            Self::Failed(e) => e,
        }
    }
}

/// A pooled connection lent to one operation, back to the pool when dropped: a request
/// abandoned mid-operation leaves it fit for the next (tokio-postgres reads and drops the
/// answers nobody waits for, and a dropped transaction queues its ROLLBACK first). One that
/// did not answer within its deadline is [`Lease::discard`]ed instead: what it waits for may
/// never come (a peer gone silent: failover, network blackhole, hung server), and
/// `RecyclingMethod::Fast`, which only asks whether the socket is closed, would hand it out
/// again and again, each time costing a request its whole timeout.
struct Lease(Object);

impl Lease {
    /// Takes the connection out of the pool (which may then open a new one) and closes it:
    /// dropping the detached wrapper aborts its connection task, which closes the socket.
    fn discard(self) {
        tracing::warn!("a pooled connection did not answer within its deadline: closing it");
        drop(Object::take(self.0));
    }
}

impl Deref for Lease {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        &self.0
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.0
    }
}

/// What an operation that ran out of time answers (503).
fn timed_out() -> StoreError {
    StoreError::Unavailable("operation timed out".into())
}

/// PostgreSQL's refusal of a cached statement whose result type changed (see `run!`).
fn is_stale_plan(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
}

/// One attempt at [`Store::list`]: both statements go out pipelined behind the scope in one
/// round trip, in one repeatable-read snapshot.
async fn list_on(
    client: &mut ClientWrapper,
    scope_sql: &str,
    user: &UserId,
    completed: Option<bool>,
    params: &ListParams,
) -> Result<Page, tokio_postgres::Error> {
    let scope = client.prepare_cached(scope_sql).await?;
    let page = client.prepare_cached(list_sql(params.sort)).await?;
    let count = client.prepare_cached(COUNT_SQL).await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let user_id = user.as_str();
    let scope_params: [&(dyn ToSql + Sync); 1] = [&user_id];
    let page_params: [&(dyn ToSql + Sync); 4] =
        [&user_id, &completed, &params.limit, &params.offset];
    let count_params: [&(dyn ToSql + Sync); 2] = [&user_id, &completed];
    // As in `scoped_on`: biased, try_join polls in order, so set_config is written first and
    // both reads run scoped; if it fails the transaction refuses the rest, and the first
    // statement that failed is the error returned.
    let (_, rows, total) = tokio::try_join!(
        biased;
        tx.execute(&scope, &scope_params),
        tx.query(&page, &page_params),
        tx.query_one(&count, &count_params),
    )?;
    tx.commit().await?;
    Ok(Page {
        tasks: rows.iter().map(task).collect(),
        total: total.get(0),
    })
}

/// One attempt at [`Store::scoped`].
async fn scoped_on(
    client: &mut ClientWrapper,
    scope_sql: &str,
    user: &UserId,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let scope = client.prepare_cached(scope_sql).await?;
    let statement = client.prepare_cached(sql).await?;
    let user_param: [&(dyn ToSql + Sync); 1] = [&user.as_str()];
    let tx = client.transaction().await?;
    // Pipelined: try_join polls the set_config future first, which writes its message before
    // the statement's, so both go out in one round trip and run in that order. If set_config
    // fails the transaction is aborted and PostgreSQL refuses the statement; it can never run
    // unscoped. (And unscoped, the policy shows nothing.) `biased`: polled in this order every
    // time, not rotated, so when both answers are in, the error returned is the first
    // statement's (the cause), not the "transaction is aborted" (25P02) that follows it; that
    // one would hide a 503 (a statement timeout) or a stale plan (see `run!`) as a 500.
    let (_, rows) = tokio::try_join!(
        biased;
        tx.execute(&scope, &user_param),
        tx.query(&statement, params)
    )?;
    tx.commit().await?;
    Ok(rows)
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
