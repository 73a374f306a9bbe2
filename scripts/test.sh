#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates (real PostgreSQL, real sockets),
# the deploy manifest checks and the end-to-end tests against a real Better Auth server.
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_postgres
ensure_chromium
for dir in deploy/better-auth deploy/demo; do ensure_npm_deps "$dir"; done

[ "${1:-}" = "--" ] && shift
log "cargo test --workspace"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$output" || status=$?

# cargo prints one "test result" line per test binary, the last often a doc-test run with
# nothing in it; close with the totals so a reader (and CI) sees the whole run at a glance.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$output"
exit "$status"
