#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates (real PostgreSQL, real sockets),
# the deploy manifest checks, the end-to-end tests against a real Better Auth server, and the
# stack in containers (scripts/test-containers.sh).
#   scripts/test.sh                      everything
#   scripts/test.sh gateway e2e          only these crates' tests
#   scripts/test.sh containers           only the container test
#   scripts/test.sh -- ARGS              extra arguments for `cargo test`; with -p/--package
#                                        only those packages run, and no containers
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

crates=()
containers=0
while (($#)) && [ "$1" != "--" ]; do
  case $1 in
    containers) containers=1 ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *)
      [ -f "$1/Cargo.toml" ] || [ -f "deploy/${1#deploy-}/Cargo.toml" ] \
        || die "no such part: $1 (a crate: gateway, tasks-service, proto-shared, e2e, deploy-check; or containers)"
      crates+=(-p "$1")
      ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
cargo_args=("$@")
picked=0
for arg in "${cargo_args[@]}"; do
  case $arg in -p | --package | -p?* | --package=*) picked=1 ;; esac
done
if ((${#crates[@]} || picked)); then
  run_cargo=1 selection=("${crates[@]}")
elif ((containers)); then
  run_cargo=0
else
  run_cargo=1 selection=(--workspace) containers=1
fi

output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
timings=()

if ((run_cargo)); then
  ensure_postgres
  ensure_chromium
  for dir in deploy/better-auth deploy/demo; do ensure_npm_deps "$dir"; done
  log "cargo test ${selection[*]} ${cargo_args[*]}"
  started=$SECONDS
  cargo test "${selection[@]}" --no-fail-fast "${cargo_args[@]}" 2>&1 | tee "$output" || status=$?
  timings+=("$(printf '%-22s %5ds' "cargo test" $((SECONDS - started)))")
fi

if ((containers)); then
  started=$SECONDS
  scripts/test-containers.sh 2>&1 | tee -a "$output" || status=$?
  timings+=("$(printf '%-22s %5ds' "containers" $((SECONDS - started)))")
else
  log "containers: not run (a part was asked for; scripts/test.sh containers runs them)"
fi

log "phase timings"
printf '  %s\n' "${timings[@]}" >&2
# cargo prints one "test result" line per test binary, the last often a doc-test run with
# nothing in it; close with the totals so a reader (and CI) sees the whole run at a glance.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$output"
exit "$status"
