#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates (real PostgreSQL, real sockets),
# the deploy manifest checks and the end-to-end tests against a real Better Auth server.
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_postgres
for dir in deploy/better-auth deploy/demo; do ensure_npm_deps "$dir"; done

[ "${1:-}" = "--" ] && shift
log "cargo test --workspace"
cargo test --workspace --no-fail-fast "$@"
