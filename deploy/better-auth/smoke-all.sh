#!/usr/bin/env bash
# Runs smoke.mjs once per supported JWT_ALG, each against a fresh database.
# For every algorithm two server instances are started at the same moment on
# the same (not yet existing) database, to exercise concurrent CREATE DATABASE
# and the advisory-locked migration; the smoke test runs against both.
#
#   PG_URL=postgres://postgres@127.0.0.1:5432 BASE_PORT=3200 ./smoke-all.sh [ALG...]
#
# Databases are dropped afterwards unless KEEP_DBS=1.
set -euo pipefail
cd "$(dirname "$0")"

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
BASE_PORT="${BASE_PORT:-3200}"
export BETTER_AUTH_SECRET="${BETTER_AUTH_SECRET:-smoke-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
ALGS=("$@")
[ ${#ALGS[@]} -gt 0 ] || ALGS=(EdDSA ES256 RS256 PS256 ES512)
LOGDIR="${LOGDIR:-$(mktemp -d)}"

pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_healthy() {
  local url=$1
  for _ in $(seq 1 100); do
    if curl -fsS "$url/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

status=0
i=0
for alg in "${ALGS[@]}"; do
  db="ba_smoke_$(echo "$alg" | tr 'A-Z' 'a-z')_$$"
  p1=$((BASE_PORT + 2 * i)); p2=$((p1 + 1)); i=$((i + 1))
  echo "=== $alg (db $db, ports $p1 $p2)"
  for port in $p1 $p2; do
    JWT_ALG=$alg PORT=$port DATABASE_URL="$PG_URL/$db" node server.mjs >"$LOGDIR/$alg-$port.log" 2>&1 &
    pids+=($!)
  done
  ok=1
  for port in $p1 $p2; do
    if ! wait_healthy "http://127.0.0.1:$port"; then
      echo "server on $port did not become healthy:"; cat "$LOGDIR/$alg-$port.log"; ok=0
    fi
  done
  if [ $ok = 1 ]; then
    sed 's/^/  [server] /' "$LOGDIR/$alg-$p1.log" "$LOGDIR/$alg-$p2.log"
    for port in $p1 $p2; do
      AUTH_URL="http://127.0.0.1:$port" EXPECT_ALG=$alg node smoke.mjs | sed 's/^/  /' || ok=0
    done
    keys=$(psql "$PG_URL/$db" -Atc "select count(*) || ' key(s): ' || string_agg(alg, ',') from jwks")
    echo "  jwks table: $keys"
  fi
  cleanup; pids=()
  sleep 0.5
  [ "${KEEP_DBS:-0}" = 1 ] || psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
  if [ $ok = 1 ]; then echo "=== $alg: PASS"; else echo "=== $alg: FAIL"; status=1; fi
done
exit $status
