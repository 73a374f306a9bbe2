#!/usr/bin/env bash
# Starts the whole stack locally, each part awaited ready:
#   PostgreSQL (the machine's; databases `tasks` and `better_auth` created if needed),
#   Better Auth (deploy/better-auth, :3000), tasks-service (:8081), gateway (:8080),
#   and the demo page (:5173).
# Ctrl-C stops everything this script started, and nothing else. Started in the background
# (`scripts/dev.sh &`), the shell makes it ignore Ctrl-C's SIGINT: stop it with SIGTERM,
# `kill PID` (it prints its PID).
#
#   scripts/dev.sh              debug build
#   scripts/dev.sh --release    release build
#   JWT_ALG=ES256 scripts/dev.sh
#
# Development secrets are generated once into target/dev/secrets.env (mode 600) and reused,
# so sessions and stored keys survive a restart. Never use them anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

profile=debug
cargo_flags=()
if [ "${1:-}" = "--release" ]; then profile=release; cargo_flags=(--release); fi

AUTH_PORT=${AUTH_PORT:-3000}
TASKS_PORT=${TASKS_PORT:-8081}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
# The gateway's admin listener: /metrics (and /healthz) for the operator, not the public port.
ADMIN_PORT=${ADMIN_PORT:-9090}
DEMO_PORT=${DEMO_PORT:-5173}
NEXT_PORT=${NEXT_PORT:-3100} # examples/nextjs, when you start it: trusted and CORS-allowed
JWT_ALG=${JWT_ALG:-EdDSA}
auth_url="http://127.0.0.1:$AUTH_PORT"
tasks_url="http://127.0.0.1:$TASKS_PORT"
gateway_url="http://127.0.0.1:$GATEWAY_PORT"
demo_url="http://127.0.0.1:$DEMO_PORT"
next_url="http://127.0.0.1:$NEXT_PORT"

for port in "$AUTH_PORT" "$TASKS_PORT" "$GATEWAY_PORT" "$ADMIN_PORT" "$DEMO_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use (another stack running?); free it or set AUTH_PORT/TASKS_PORT/GATEWAY_PORT/ADMIN_PORT/DEMO_PORT"
  fi
done

log "dev.sh runs as PID $$: Ctrl-C stops it; in the background (where SIGINT is ignored), kill $$"
ensure_postgres
ensure_database tasks
ensure_database better_auth
ensure_npm_deps deploy/better-auth
ensure_npm_deps deploy/demo

log "building tasks-service and gateway ($profile; the first build takes minutes)"
cargo build "${cargo_flags[@]}" -p tasks-service -p gateway

mkdir -p target/dev/logs
secrets=target/dev/secrets.env
if [ ! -f "$secrets" ]; then
  (umask 077 && printf 'BETTER_AUTH_SECRET=%s\nIDENTITY_KEYS=gateway:%s\n' "$(random_secret)" "$(random_secret)" >"$secrets")
fi
# shellcheck disable=SC1090
source "$secrets"

pids=()
declare -A names=() # pid -> part
stop() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    log "stopping (${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

start() { # name, then the command; output goes to target/dev/logs/<name>.log
  local name=$1; shift
  # NO_COLOR: the logs are files, read with less and grep, not a terminal.
  NO_COLOR=1 "$@" >"target/dev/logs/$name.log" 2>&1 &
  pids+=($!)
  names[$!]=$name
  last_pid=$!
}

log "starting Better Auth ($JWT_ALG) on $auth_url"
start better-auth env -C deploy/better-auth PORT="$AUTH_PORT" BETTER_AUTH_URL="$auth_url" \
  BETTER_AUTH_SECRET="$BETTER_AUTH_SECRET" JWT_ALG="$JWT_ALG" \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/better_auth \
  TRUSTED_ORIGINS="$demo_url,$gateway_url,$next_url" node server.mjs
wait_ready "Better Auth" "$auth_url/healthz" "$last_pid"

log "starting tasks-service on $tasks_url"
start tasks-service env TASKS_LISTEN="127.0.0.1:$TASKS_PORT" IDENTITY_KEYS="$IDENTITY_KEYS" \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/tasks "target/$profile/tasks-service"
wait_ready tasks-service "$tasks_url/readyz" "$last_pid"

log "starting gateway on $gateway_url"
start gateway env GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
  TASKS_SERVICE_URL="$tasks_url" \
  BETTER_AUTH_URL="$auth_url" PUBLIC_ROUTES="/api/auth/=$auth_url" \
  CORS_ALLOWED_ORIGINS="$demo_url,$next_url" IDENTITY_KEYS="$IDENTITY_KEYS" \
  REVOCATION_DATABASE_URL=postgres://postgres@127.0.0.1:5432/better_auth "target/$profile/gateway"
wait_ready gateway "$gateway_url/readyz" "$last_pid"

log "starting the demo page on $demo_url"
start demo env -C deploy/demo DEMO_PORT="$DEMO_PORT" node serve.mjs
wait_ready "demo page" "$demo_url/" "$last_pid"

cat <<EOT

  Stack is up. Logs: target/dev/logs/*.log

    gateway        $gateway_url      (the only URL a frontend needs: /api/auth/* is Better Auth)
    tasks-service  $tasks_url      (internal; needs the gateway's credential)
    Better Auth    $auth_url      (JWT alg $JWT_ALG, JWKS at $auth_url/api/auth/jwks)
    demo page      $demo_url/?auth=$auth_url&api=$gateway_url

  The Next.js example (examples/nextjs/README.md is the integration guide):

    (cd clients/typescript && npm ci) && cd examples/nextjs && npm ci && npm run build
    GATEWAY_URL=$gateway_url npm start -- -H 127.0.0.1 -p $NEXT_PORT    # $next_url

  Sign up and get a JWT (through the gateway, as a one-origin frontend would). The chain
  stops at the first step that fails and shows why (a user that exists signs in instead):

    curl -sS --fail-with-body -c /tmp/jar -H 'content-type: application/json' -H 'origin: $gateway_url' \\
      -d '{"email":"me@example.com","password":"correct-horse-battery","name":"Me"}' \\
      $gateway_url/api/auth/sign-up/email && echo &&      # or /api/auth/sign-in/email without "name"
    TOKEN=\$(curl -sSf -b /tmp/jar $gateway_url/api/auth/token | sed -n 's/.*"token":"\\([^"]*\\)".*/\\1/p') &&
    [ -n "\$TOKEN" ] &&
    USER_ID=\$(curl -sSf -b /tmp/jar $gateway_url/api/auth/get-session | sed -n 's/.*"userId":"\\([^"]*\\)".*/\\1/p') &&
    [ -n "\$USER_ID" ] && echo "signed in as \$USER_ID" || echo 'a step failed: no token (see above)' >&2

  Then list your tasks through the gateway:

    curl -s -H "authorization: Bearer \$TOKEN" $gateway_url/api/\$USER_ID/tasks

  Ctrl-C stops everything this script started; in the background, kill $$ (SIGTERM) does.
EOT

# Stop everything as soon as any part dies, or on Ctrl-C. Ctrl-C reaches the parts too, and
# bash skips its INT trap when the child it waits for exits cleanly on that signal, so the
# part that ended first is named either way; only a failure points at the logs.
set +e
wait -n -p ended "${pids[@]}"
status=$?
if [ "$status" = 0 ]; then
  log "${names[$ended]:-a part} stopped"
else
  log "${names[$ended]:-a part} exited with status $status; see target/dev/logs/${names[$ended]:-*}.log"
fi
exit "$status"
