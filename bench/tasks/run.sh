#!/usr/bin/env bash
# Benchmark of tasks-service: requests/s and p50/p99 latency for list (20 tasks), create and
# toggle over HTTP, and what row-level security costs per request, all measured in one run.
# Load generator: tasks-service/examples/loadgen.rs (Rust, reqwest; a fresh credential is
# signed for every request, as the gateway does).
#
# Usage: bench/tasks/run.sh
#   env: BENCH_SECONDS=5 BENCH_CONCURRENCY=8 OTHER_ROWS=200000 BENCH_DB_SECONDS=2 BENCH_DB_ROUNDS=5
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres). Prints figures; asserts nothing,
# but a run with any failed request (HTTP: not 2xx or no answer; SQL: not the user's 20 rows) is
# void: the table is printed, and the script exits 1 without the comparisons.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=${BENCH_SECONDS:-5}
CONC=${BENCH_CONCURRENCY:-8}
OTHER_ROWS=${OTHER_ROWS:-200000}
DB_SECS=${BENCH_DB_SECONDS:-2}
DB_ROUNDS=${BENCH_DB_ROUNDS:-5}
ADMIN=postgres://postgres@127.0.0.1:5432
DB="tasks_bench_$$"
KEY="bench:bench-secret-0123456789abcdef-0123456789"
USER_ID="bench-user"

psql -h 127.0.0.1 -U postgres -Atqc 'SELECT 1' >/dev/null 2>&1 || {
  echo "PostgreSQL is not reachable on 127.0.0.1:5432; start it: pg_ctlcluster --skip-systemctl-redirect 15 main start" >&2
  exit 1
}

echo "==> building release binaries"
cargo build --release -q -p tasks-service --bin tasks-service --example loadgen
BIN=target/release/tasks-service
LOADGEN=target/release/examples/loadgen

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB"

SERVICE_PID="" RESULTS=""
cleanup() {
  if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  if [ -n "$RESULTS" ]; then rm -f "$RESULTS"; fi
}
trap cleanup EXIT

# IDENTITY_ACCEPT_V1: the v1 rows below measure the credential as it was, in the same run.
# IDENTITY_REPLAY_PER_USER: one user is the whole load here, so its share is the whole memory.
IDENTITY_KEYS="$KEY" DATABASE_URL="$ADMIN/$DB" TASKS_LISTEN="127.0.0.1:$PORT" \
  IDENTITY_ACCEPT_V1=true IDENTITY_REPLAY_PER_USER=1000000 RUST_LOG=warn DB_POOL_SIZE=16 "$BIN" &
SERVICE_PID=$!

for _ in $(seq 1 100); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$BASE/readyz" >/dev/null || { echo "the service did not become ready" >&2; exit 1; }

echo "==> seeding: $USER_ID with 20 tasks, $OTHER_ROWS tasks of 1000 other users"
"$LOADGEN" seed "$BASE" "$KEY" "$USER_ID" 20
# As the superuser (bypasses RLS): other users' rows, so the index, not luck, keeps lists cheap.
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "
  INSERT INTO tasks (user_id, title, description)
  SELECT 'other-' || (g % 1000), 'Other task ' || g, NULL FROM generate_series(1, $OTHER_ROWS) g;
  ANALYZE tasks;"

echo "==> measuring: HTTP $SECS s per scenario with $CONC clients; SQL $DB_ROUNDS interleaved rounds of $DB_SECS s per variant, 1 client"
RESULTS=$(mktemp)
export OTHER_ROWS_LABEL="a table of $((OTHER_ROWS + 20)) rows"
{
  # v2 (the gateway's credential since it binds body, audience and nonce) and v1 alternated,
  # twice each, so drift in machine load hits both alike.
  for _ in 1 2; do
    "$LOADGEN" http "$BASE" "$KEY" "$USER_ID" list "$SECS" "$CONC"
    LOADGEN_CREDENTIAL=v1 "$LOADGEN" http "$BASE" "$KEY" "$USER_ID" list "$SECS" "$CONC"
  done
  "$LOADGEN" http "$BASE" "$KEY" "$USER_ID" toggle "$SECS" "$CONC"
  LOADGEN_CREDENTIAL=v1 "$LOADGEN" http "$BASE" "$KEY" "$USER_ID" toggle "$SECS" "$CONC"
  "$LOADGEN" http "$BASE" "$KEY" bench-creator create "$SECS" "$CONC"
  # The same list statement straight against PostgreSQL, in the store's transaction shape;
  # one client (latency, not contention, is what RLS could add), variants interleaved.
  "$LOADGEN" db "$ADMIN/$DB" "$USER_ID" "$DB_SECS" 1 "$DB_ROUNDS"
} > "$RESULTS"

echo
printf '%-22s %10s %10s %10s %10s %7s\n' scenario requests 'req/s' 'p50 (us)' 'p99 (us)' errors
awk -F'\t' '{ printf "%-22s %10s %10s %10s %10s %7s\n", $1, $2, $3, $4, $5, $6 }' "$RESULTS"
echo
# The load generator leaves failed requests out of requests, req/s and the percentiles, but a
# run with any is no measure of the service's normal path: void.
FAILED=$(awk -F'\t' '$6 != 0 { printf "%s%s (%s)", sep, $1, $6; sep = ", " }' "$RESULTS")
if [ -n "$FAILED" ]; then
  echo "failed requests in: $FAILED; figures not valid" >&2
  exit 1
fi
# One SQL client, so mean latency = 1 / throughput. "rls" is the service's own path (role
# tasks_rls, set_config pipelined with the statement, policy evaluated); "owner-scoped" sends
# the same statements as the superuser (policy bypassed); "owner-plain" drops set_config too.
awk -F'\t' '
  $1 == "db list rls"          { r = 1e6 / $3; r50 = $4 }
  $1 == "db list owner-scoped" { s = 1e6 / $3; s50 = $4 }
  $1 == "db list owner-plain"  { p = 1e6 / $3; p50 = $4 }
  END {
    printf "RLS cost per list request (20 rows of %s, one SQL client, same run):\n", ENVIRON["OTHER_ROWS_LABEL"]
    printf "  policy only   (rls - owner-scoped): %+6.1f us mean, %+5d us p50, ratio %.3f\n", r - s, r50 - s50, r / s
    printf "  policy + set_config (rls - owner-plain): %+6.1f us mean, %+5d us p50, ratio %.3f\n", r - p, r50 - p50, r / p
  }' "$RESULTS"
# Credential v2 against v1, same service, same run: summed requests of each.
awk -F'\t' '
  $1 == "http list"      { l2 += $3 } $1 == "http list v1" { l1 += $3 }
  $1 == "http toggle"    { t2 += $3 }        $1 == "http toggle v1" { t1 += $3 }
  END {
    printf "Credential v2 / v1 throughput (same run): list %.3f, toggle %.3f\n", l2 / l1, t2 / t1
  }' "$RESULTS"
