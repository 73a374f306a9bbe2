#!/usr/bin/env bash
# Runs every test: the TypeScript client (regenerated from the contract, must match), the
# Next.js example's production build, unit and integration tests of all crates (real
# PostgreSQL, real sockets), the deploy manifest checks, the end-to-end tests against a real
# Better Auth server (schemathesis against the contract, headless Chromium driving the demo
# page and the Next.js example, revocation at two gateway replicas; then again with the
# gateway's per-core runtime layout and reaching tasks-service over its Unix socket,
# E2E_RUNTIME_LAYOUT=per-core E2E_WORKER_THREADS=2 E2E_TASKS_SOCKET=1), the stack in
# containers (scripts/test-containers.sh) and every fuzz target briefly on its seed corpus
# (scripts/fuzz.sh, FUZZ_SECONDS each, default 20). A failed phase does not stop the later
# ones: it is marked FAILED, and the exit status is non-zero. Closes with the totals (passed,
# failed, ignored), each phase's time and the whole run's, also when stopped by SIGTERM or SIGINT.
#   scripts/test.sh                      everything
#   scripts/test.sh gateway e2e          only these crates' tests
#   scripts/test.sh containers           only the container test
#   scripts/test.sh fuzz                 only the fuzz targets
#   scripts/test.sh -- ARGS              extra arguments for `cargo test`; with -p/--package
#                                        only those packages run, and no containers
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

crates=()
containers=0
fuzz=0
while (($#)) && [ "$1" != "--" ]; do
  case $1 in
    containers) containers=1 ;;
    fuzz) fuzz=1 ;;
    -h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *)
      [ -f "$1/Cargo.toml" ] || [ -f "deploy/${1#deploy-}/Cargo.toml" ] \
        || die "no such part: $1 (a crate: gateway, tasks-service, proto-shared, e2e, deploy-check; or containers, fuzz)"
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
# everything: the whole workspace, the front-end checks and the containers.
everything=0
if ((${#crates[@]} || picked)); then
  run_cargo=1 selection=("${crates[@]}")
elif ((containers || fuzz)); then
  run_cargo=0
else
  run_cargo=1 selection=(--workspace) containers=1 fuzz=1 everything=1
fi

timings=()
phase_start=$SECONDS
phase_failed=0
# A phase's failure: `command || failed $?`. The phase goes on, the next ones run, and the exit
# status is then non-zero.
failed() { status=${1:-1}; phase_failed=1; }
# Ends the current phase: remembers how long it took under the name $1, and whether it failed.
phase_done() {
  local mark=""
  if ((phase_failed)); then mark="  FAILED"; fi
  timings+=("$(printf '%-34s %5ds%s' "$1" $((SECONDS - phase_start)) "$mark")")
  phase_start=$SECONDS phase_failed=0
}

output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
# The closing summary: the tests' totals, each phase's time, the whole run's.
summary() {
  # cargo prints one "test result" line per test binary, the last often a doc-test run with
  # nothing in it; close with the totals so a reader (and CI) sees the whole run at a glance,
  # ignored tests among them, so that a test newly ignored shows.
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1) } }
       END { printf "\ntotal: %d passed, %d failed, %d ignored\n", p, f, g }' "$output"
  printf '\nphase timings:\n'
  printf '  %s\n' "${timings[@]}"
  printf '  %-34s %5ds\n' "total elapsed" "$SECONDS"
}
# Stopped from outside (.ci/run's time limit, Ctrl-C): the summary of what finished, then out.
trap 'log "stopped by SIGTERM: the phase under way is not among the timings below"; summary; exit 143' TERM
trap 'log "interrupted: the phase under way is not among the timings below"; summary; exit 130' INT

if ((run_cargo)); then
  # In a subshell, each step chained: the ensure_* helpers die (exit) on a failure, which must
  # end this phase only, and `set -e` does not act on the left of `||`.
  (
    ensure_postgres || exit
    ensure_chromium || exit
    # The client before the example: the example links it and resolves its packages there.
    for dir in deploy/better-auth deploy/demo clients/typescript examples/nextjs; do ensure_npm_deps "$dir" || exit; done
    ensure_schemathesis
  ) || failed $?
  phase_done "dependencies"
fi

# The e2e crate's Next.js test serves the example's production build.
frontend=$everything
[[ " ${selection[*]:-} ${cargo_args[*]} " == *" e2e "* ]] && frontend=1
if ((run_cargo && frontend)); then
  log "TypeScript client: regenerate from the contract and compare; unit tests (and the demo page's)"
  (cd clients/typescript && npm run --silent check && npm test --silent) || failed $?
  # The demo page's own unit tests (which origins its address may name).
  (cd deploy/demo && npm test --silent) || failed $?
  phase_done "TypeScript client"

  log "Next.js example: next build"
  (cd examples/nextjs && NEXT_TELEMETRY_DISABLED=1 npm run --silent build) || failed $?
  phase_done "Next.js example build"
fi

if ((run_cargo)); then
  log "cargo test ${selection[*]} ${cargo_args[*]}"
  cargo test "${selection[@]}" --no-fail-fast "${cargo_args[@]}" 2>&1 | tee "$output" || failed $?
  phase_done "cargo test ${selection[*]}"
fi

if ((everything)); then
  # The end-to-end suite once more with the gateway on its other runtime layout, two
  # workers (issue 17; the run above used the defaults: on two CPUs, one single-threaded
  # worker) and on tasks-service's Unix socket, as the Kubernetes pod runs it (the run above
  # used TCP): neither may change anything a browser, a client or the service can see.
  log "e2e suite with the gateway's per-core layout (2 workers), over tasks-service's Unix socket"
  E2E_RUNTIME_LAYOUT=per-core E2E_WORKER_THREADS=2 E2E_TASKS_SOCKET=1 cargo test -p e2e --no-fail-fast 2>&1 | tee -a "$output" || failed $?
  phase_done "e2e, per-core layout, Unix socket"

  # A crate that only verifies credentials takes proto-shared without features: it must build
  # alone, and without reqwest or tracing-subscriber (issue 14).
  log "proto-shared with no features: builds, and pulls no HTTP client or log set-up"
  cargo clippy -q -p proto-shared --lib --no-default-features -- -D warnings 2>&1 | tee -a "$output" || failed $?
  if cargo tree -p proto-shared --no-default-features -e normal | grep -E '^.*(reqwest|tracing-subscriber) v'; then
    echo "proto-shared pulls the crates above without features" | tee -a "$output"
    failed 1
  fi
  phase_done "proto-shared without features"
fi

if ((containers)); then
  scripts/test-containers.sh 2>&1 | tee -a "$output" || failed $?
  phase_done "containers"
else
  log "containers: not run (a part was asked for; scripts/test.sh containers runs them)"
fi

if ((fuzz)); then
  # Each target briefly from its committed seeds: a property that a change breaks fails here
  # (longer runs: scripts/fuzz.sh SECONDS).
  log "fuzz targets, ${FUZZ_SECONDS:-20}s each (scripts/fuzz.sh)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}" 2>&1 | tee -a "$output" || failed $?
  phase_done "fuzz (build and run)"
else
  log "fuzz: not run (a part was asked for; scripts/test.sh fuzz runs it)"
fi

summary
exit "$status"
