//! Schema migrations: an ordered list of SQL files compiled into the binary, applied at start
//! under a transaction-scoped advisory lock so that several instances starting at once apply
//! each file exactly once. Applied versions are recorded in `schema_migrations`.

use std::fmt;

use tokio_postgres::Client;

use crate::db::first_row;

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

/// The database's encoding where it is not UTF8, which the service refuses to start on: the
/// table's checks count characters with `char_length` and match control characters by code
/// point, as `Title::parse` does, which holds only in UTF8. Under `SQL_ASCII` a valid title of
/// 200 accented letters counts 400 and `€` holds a byte the control-character check matches;
/// under `LATIN1` most of Unicode cannot be stored at all: each would be a 500 per request.
pub async fn encoding_not_utf8(client: &Client) -> Result<Option<String>, tokio_postgres::Error> {
    let answer = client.simple_query("SHOW server_encoding").await?;
    let encoding = first_row(&answer)
        .and_then(|row| row.get(0))
        .unwrap_or_default();
    Ok((encoding != "UTF8").then(|| encoding.to_owned()))
}

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

/// What the migrations set up for row-level security on `tasks` and an operator undid since
/// (`ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY`, `DISABLE ROW LEVEL SECURITY`, `DROP
/// POLICY`): the service's second line of isolation gone. At least one field is set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RowSecurityLapse {
    pub table_missing: bool,
    pub disabled: bool,
    pub not_forced: bool,
    pub policy_missing: bool,
}

impl fmt::Display for RowSecurityLapse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.table_missing {
            return f.write_str("table tasks is missing");
        }
        let problems = [
            (
                self.disabled,
                "row-level security is disabled on table tasks \
                 (ALTER TABLE tasks ENABLE ROW LEVEL SECURITY restores it)",
            ),
            (
                self.not_forced,
                "row-level security is not forced on table tasks, so the table's owner \
                 bypasses it (ALTER TABLE tasks FORCE ROW LEVEL SECURITY restores it)",
            ),
            (
                self.policy_missing,
                "policy tasks_owner_only on table tasks is missing \
                 (migration 0002_row_level_security creates it)",
            ),
        ];
        let wrong: Vec<&str> = problems
            .into_iter()
            .filter_map(|(wrong, problem)| wrong.then_some(problem))
            .collect();
        f.write_str(&wrong.join("; "))
    }
}

/// Whether `tasks` has row-level security enabled and forced and still has its policy, read
/// from the catalog in one small simple query (one round trip, nothing prepared): cheap
/// enough for every readiness probe. `Ok(None)` when all is in place.
pub async fn row_security_lapse(
    client: &Client,
) -> Result<Option<RowSecurityLapse>, tokio_postgres::Error> {
    // to_regclass resolves `tasks` by the search path, as the store's statements do.
    const CHECK: &str = "SELECT c.relrowsecurity, c.relforcerowsecurity, EXISTS (\
         SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tasks_owner_only'\
         ) FROM pg_class c WHERE c.oid = to_regclass('tasks')";
    let answer = client.simple_query(CHECK).await?;
    let lapse = match first_row(&answer) {
        None => RowSecurityLapse {
            table_missing: true,
            disabled: true,
            not_forced: true,
            policy_missing: true,
        },
        Some(row) => {
            let no = |column: usize| row.get(column) != Some("t");
            RowSecurityLapse {
                table_missing: false,
                disabled: no(0),
                not_forced: no(1),
                policy_missing: no(2),
            }
        }
    };
    let in_force = !(lapse.disabled || lapse.not_forced || lapse.policy_missing);
    Ok((!in_force).then_some(lapse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapse_names_each_thing_undone_and_how_to_restore_it() {
        let lapse = RowSecurityLapse {
            table_missing: false,
            disabled: false,
            not_forced: true,
            policy_missing: true,
        };
        let shown = lapse.to_string();
        assert!(
            shown.starts_with("row-level security is not forced on table tasks"),
            "{shown}"
        );
        assert!(
            shown.contains("ALTER TABLE tasks FORCE ROW LEVEL SECURITY"),
            "{shown}"
        );
        assert!(
            shown.contains("; policy tasks_owner_only on table tasks is missing"),
            "{shown}"
        );
        assert!(!shown.contains("disabled"), "{shown}");
    }

    #[test]
    fn versions_are_strictly_increasing() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
