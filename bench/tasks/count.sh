#!/usr/bin/env bash
# What the list's X-Total-Count costs: the store's list transaction with and without the
# count, for one user with 10,000 tasks (half completed) among 200,000 rows of other users,
# run by pgbench exactly as the service runs it (role tasks_rls under row-level security,
# repeatable read, set_config, the page of 100, then the count). In the service the count is
# pipelined with the page in the same round trip, so what it adds to a list request is the
# count's execution time shown here. Prints figures; asserts nothing.
#
# Usage: bench/tasks/count.sh
#   env: USER_TASKS=10000 OTHER_ROWS=200000 SECONDS_PER_RUN=3 ROUNDS=3
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) and pgbench.
set -euo pipefail
cd "$(dirname "$0")/../.."

USER_TASKS=${USER_TASKS:-10000}
OTHER_ROWS=${OTHER_ROWS:-200000}
SECS=${SECONDS_PER_RUN:-3}
ROUNDS=${ROUNDS:-3}
DB="tasks_count_bench_$$"
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)

command -v pgbench >/dev/null || { echo "pgbench is missing: apt-get install -y postgresql-client" >&2; exit 1; }
"${PSQL[@]}" -d postgres -Atc 'SELECT 1' >/dev/null 2>&1 || {
  echo "PostgreSQL is not reachable on 127.0.0.1:5432; start it: pg_ctlcluster --skip-systemctl-redirect 15 main start" >&2
  exit 1
}
WORK=$(mktemp -d)
cleanup() {
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
for migration in tasks-service/src/migrations/*.sql; do "${PSQL[@]}" -d "$DB" -f "$migration"; done

echo "==> seeding: bench-user with $USER_TASKS tasks (half completed), $OTHER_ROWS tasks of 1000 other users"
"${PSQL[@]}" -d "$DB" -c "
  INSERT INTO tasks (user_id, title, completed)
  SELECT 'bench-user', 'Task ' || g, g % 2 = 0 FROM generate_series(1, $USER_TASKS) g;
  INSERT INTO tasks (user_id, title)
  SELECT 'other-' || (g % 1000), 'Other task ' || g FROM generate_series(1, $OTHER_ROWS) g;"
# As autovacuum would: the visibility map lets the count read the index alone.
"${PSQL[@]}" -d "$DB" -c "VACUUM ANALYZE tasks"

# The statements of tasks-service/src/store.rs (sort=created), the status filter a bound
# parameter as there; pgbench cannot bind NULL, so "all" binds 'all' and NULLIF makes it NULL.
list="SELECT id, user_id, title, description, completed, created_at, updated_at FROM tasks WHERE user_id = 'bench-user' AND (NULLIF(:completed, 'all')::boolean IS NULL OR completed = NULLIF(:completed, 'all')::boolean) ORDER BY created_at, id LIMIT 100 OFFSET 0;"
count="SELECT count(*) FROM tasks WHERE user_id = 'bench-user' AND (NULLIF(:completed, 'all')::boolean IS NULL OR completed = NULLIF(:completed, 'all')::boolean);"
script() { # name, statements...
  local name=$1; shift
  {
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
    echo "SELECT set_config('app.user_id', 'bench-user', true);"
    printf '%s\n' "$@"
    echo "COMMIT;"
  } > "$WORK/$name.sql"
}
script page "$list"
script page+count "$list" "$count"
script count "$count"

echo "==> pgbench: 1 client, ${SECS}s per run, $ROUNDS interleaved rounds, role tasks_rls (row-level security on)"
RESULTS="$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  for filter in all false; do
    for variant in page page+count count; do
      mean=$(PGOPTIONS="-c role=tasks_rls" pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 1 -T "$SECS" \
        -D completed="$filter" -f "$WORK/$variant.sql" "$DB" 2>/dev/null \
        | awk '/^latency average/ { print $4 }')
      printf '%s\t%s\t%s\n' "$([ "$filter" = all ] && echo all || echo pending)" "$variant" "$mean" >> "$RESULTS"
    done
  done
  echo "    round $round done"
done

echo
echo "median latency per transaction (ms), $USER_TASKS tasks of the user; page = 100 rows:"
printf '%-8s %10s %12s %10s %16s\n' status page page+count count 'count adds'
for filter in all pending; do
  row=()
  for variant in page page+count count; do
    row+=("$(awk -F'\t' -v f="$filter" -v v="$variant" '$1 == f && $2 == v { print $3 }' "$RESULTS" | sort -n \
      | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')")
  done
  added=$(awk -v a="${row[0]}" -v b="${row[1]}" 'BEGIN { printf "%+.3f (%.2fx)", b - a, b / a }')
  printf '%-8s %10s %12s %10s %16s\n' "$filter" "${row[0]}" "${row[1]}" "${row[2]}" "$added"
done
echo
echo "(Each transaction here is one round trip per statement; the service pipelines the page"
echo " and the count in one, so a list request pays the count's execution, not another trip.)"
