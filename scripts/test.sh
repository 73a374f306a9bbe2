#!/usr/bin/env bash
# Runs every test: the TypeScript client (regenerated from the contract, must match), the
# Next.js example's production build, then unit and integration tests of all crates (real
# PostgreSQL, real sockets), the deploy manifest checks and the end-to-end tests against a
# real Better Auth server: schemathesis against the contract, and headless Chromium driving
# the demo page and the Next.js example. Closes with the totals and each phase's time.
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

timings=()
phase_start=$SECONDS
# Ends the current phase: remembers how long it took under the name $1.
phase_done() {
  timings+=("$(printf '%-34s %4ds' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}

ensure_postgres
ensure_chromium
# The client before the example: the example links it and resolves its packages there.
for dir in deploy/better-auth deploy/demo clients/typescript examples/nextjs; do ensure_npm_deps "$dir"; done
ensure_schemathesis
phase_done "dependencies"

log "TypeScript client: regenerate from the contract and compare; unit tests"
(cd clients/typescript && npm run --silent check && npm test --silent)
phase_done "TypeScript client"

log "Next.js example: next build"
(cd examples/nextjs && NEXT_TELEMETRY_DISABLED=1 npm run --silent build)
phase_done "Next.js example build"

[ "${1:-}" = "--" ] && shift
log "cargo test --workspace"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$output" || status=$?
phase_done "cargo test --workspace"

# cargo prints one "test result" line per test binary, the last often a doc-test run with
# nothing in it; close with the totals so a reader (and CI) sees the whole run at a glance.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$output"
printf '\nphase timings:\n'
printf '  %s\n' "${timings[@]}"
exit "$status"
