//! Schema migrations: an ordered list of SQL files compiled into the binary, applied at start
//! under a transaction-scoped advisory lock so that several instances starting at once apply
//! each file exactly once. Applied versions are recorded in `schema_migrations`.

use tokio_postgres::Client;

/// One migration: its version (order), name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only: an applied migration is never edited.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "create_tasks",
        sql: include_str!("migrations/0001_create_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "row_level_security",
        sql: include_str!("migrations/0002_row_level_security.sql"),
    },
];

/// Arbitrary but fixed: the advisory lock every instance of this service takes to migrate.
/// Advisory locks are per database, so instances on other databases do not wait.
const LOCK_KEY: i64 = 0x7461_736b_735f_6d67; // "tasks_mg"

/// Applies every migration not yet recorded, in one transaction; returns the versions applied.
pub async fn run(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Waits for any other instance mid-migration, then sees what it committed.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        applied.push(migration.version);
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
