#!/usr/bin/env bash
# User-space instructions per proxied request, warm token cache, for nginx as a plain reverse
# proxy and for the gateway (one token, then 100 in turn as many users' requests arrive, then
# one with revocation on), counted by valgrind's callgrind: a figure that, unlike requests/s
# on a shared machine, barely moves between runs, so it can rank changes worth 1 %.
#
# Each proxy runs alone under callgrind; wrk warms it up, the counters are zeroed, wrk runs
# again, and the instructions counted are divided by the requests answered in that window
# (wrk's count for nginx, the gateway's own request counter for the gateway); a window with any
# request failed (nginx: wrk's report.lua; the gateway: an answer other than 200) gives no
# figure, and stops the script. The same window's
# calls into the allocator (malloc and friends for nginx, mimalloc's entry points for the
# gateway), divided the same way, give the heap allocations per request.
#
# Caveat: valgrind hides SHA-NI, so aws-lc falls back to its AVX SHA-256 and the gateway's
# identity HMAC is overcounted several times over (~8.5k of its count: three SHA-256 blocks
# at ~2.8k instructions each, a few hundred with SHA-NI); the rest compares fairly.
#
# Usage: bench/gateway/instructions.sh
#   env: DURATION=6s CONNECTIONS=16 BASE_PORT=19150
#        GATEWAY_BIN=<path> (another gateway build to count, e.g. one built with other
#        settings, instead of this checkout's release build)
#        KEEP_DUMPS=<dir> (keeps each callgrind dump there, for callgrind_annotate; the
#        gateway's three counts share a name: one token is <name>.~1~, 100 tokens <name>.~2~,
#        revocation on <name>)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-16}
BASE_PORT=${BASE_PORT:-19150}
UP_PORT=$BASE_PORT NGINX_PORT=$((BASE_PORT + 1)) GW_PORT=$((BASE_PORT + 2)) ISSUER_PORT=$((BASE_PORT + 3))
# The gateway serves /metrics on its admin listener only.
ADMIN_PORT=$((BASE_PORT + 4))
USER_PATH=/api/bench-user/tasks

# shellcheck source=bench/gateway/common.sh
source "$ROOT/bench/gateway/common.sh"
for tool in wrk nginx valgrind; do
  command -v "$tool" >/dev/null || { say "installing wrk, nginx-light and valgrind (Debian)"; \
    apt-get install -y wrk nginx-light valgrind >/dev/null || { apt-get update >/dev/null && \
    apt-get install -y wrk nginx-light valgrind >/dev/null; }; break; }
done

build
scratch

"$BIN/examples/bench_upstream" "127.0.0.1:$UP_PORT" 2>/dev/null &
PIDS+=($!)
ISSUER="http://127.0.0.1:$ISSUER_PORT"
"$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" 100 "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 600); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
wait_for "http://127.0.0.1:$UP_PORT/"
# One token on every request: each connection's remembered token answers it. The count with
# 100 tokens in turn (distinct, one user) goes through the token cache on every request.
ONE_TOKEN=(-H "Authorization: Bearer $(cat "$TMP/tokens/warm-EdDSA.txt")")
MANY_TOKENS=(-s "$ROOT/bench/gateway/tokens.lua" -- "$TMP/tokens/tokens-EdDSA.txt")

# allocations <callgrind file>: calls into the allocator's entry points, summed over every
# caller. callgrind names a function once, where it first appears as a caller ("fn=(12)
# malloc") or a callee ("cfn=(12) malloc"), and refers to it by number after.
allocations() {
  awk '
    /^c?fn=/ {
      id = $1; sub(/^c?fn=/, "", id)
      if (NF > 1) name[id] = $2
    }
    /^cfn=/ { current = name[id]; next }
    /^calls=/ && current ~ /^(malloc|calloc|realloc|posix_memalign|memalign|aligned_alloc|mi_malloc|mi_zalloc|mi_calloc|mi_realloc|mi_malloc_aligned|mi_zalloc_aligned|mi_realloc_aligned)$/ {
      n = $1; sub(/^calls=/, "", n); total += n
    }
    END { print total + 0 }' "$1"
}

# count <pid> <url> <requests command> [wrk args...]: warm-up, zero, measured run (wrk's
# output in $TMP/wrk.out), dump; prints instructions and allocations per request. The requests
# command prints the count so far. A generous timeout: everything runs slowly under valgrind.
count() {
  local pid=$1 url=$2 requests=$3; shift 3
  wrk -t1 -c"$CONNECTIONS" -d2s --timeout 10s "$url" "$@" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  : >"$TMP/wrk.out"
  local before; before=$($requests)
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s "$url" "$@" >"$TMP/wrk.out"
  local after; after=$($requests)
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  local dump; dump=$(ls -t "$TMP"/callgrind.*.out.* | head -1)
  local total; total=$(grep -h '^summary:' "$dump" | awk '{ print $2 }')
  local allocated; allocated=$(allocations "$dump")
  [ -z "${KEEP_DUMPS:-}" ] || { mkdir -p "$KEEP_DUMPS" && cp --backup=numbered "$dump" "$KEEP_DUMPS/"; }
  rm -f "$TMP"/callgrind.*.out.*
  echo "$total $allocated $((after - before))" | awk '{ printf "%.0f %.1f %d\n", $1 / $3, $2 / $3, $3 }'
}

# --- nginx, one process (no master), under callgrind -------------------------------------------
nginx_conf "$TMP/nginx" "$NGINX_PORT" "$UP_PORT" "master_process off;"
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.nginx.out" \
  nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" 2>/dev/null &
NGINX_PID=$!
PIDS+=($NGINX_PID)
wait_for "http://127.0.0.1:$NGINX_PORT/" 60
# wrk's own count of the measured run: 0 before it, its count after.
wrk_requests() { awk '/requests in/ { n = $1 } END { print n + 0 }' "$TMP/wrk.out"; }
say "counting nginx"
read -r NGINX_IR NGINX_ALLOC NGINX_N < <(count "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT$USER_PATH" wrk_requests \
  -s "$ROOT/bench/gateway/report.lua")
# wrk's count includes failed requests (a 502 from nginx is cheap): any voids the figure.
NGINX_FAILED=$(awk '/^RESULT/ { print $5 }' "$TMP/wrk.out")
[ "$NGINX_FAILED" = 0 ] || {
  say "nginx: ${NGINX_FAILED:-an unknown number of} failed requests (not 2xx/3xx, socket errors, timeouts): no figure"; exit 1
}
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; forget "$NGINX_PID"

# --- the gateway, one worker thread, under callgrind -------------------------------------------
# Requests answered 200, and answered otherwise: a count over refusals (a 401 is far cheaper
# than a proxied request) would be no count of the request path at all.
gateway_requests() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" \
    | awk '/^gateway_requests_total.*route="api".*status="200"/ { s += $2 } END { print s + 0 }'
}
gateway_refused() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" \
    | awk '/^gateway_requests_total.*route="api"/ && !/status="200"/ { s += $2 } END { print s + 0 }'
}
# count_gateway <tokens> [NAME=value...]: sets $COUNTED to the instructions, allocations and
# requests of a gateway started with these settings on top of the common ones, sent the wrk
# arguments of the array named <tokens> (ONE_TOKEN or MANY_TOKENS). Run in this shell, not in
# $(...) or <(...): a failure must reach the EXIT trap, which ends the gateway under valgrind.
# It returns once this gateway has exited: the next one starts on the same port, which an
# exiting gateway still held.
count_gateway() {
  local -n tokens=$1; shift
  env "$@" GATEWAY_LISTEN="127.0.0.1:$GW_PORT" ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
  TASKS_SERVICE_URL="http://127.0.0.1:$UP_PORT" \
  BETTER_AUTH_URL="$ISSUER" WORKER_THREADS=1 RUST_LOG=warn LOG_FORMAT=json IDENTITY_PROBE_SECS=0 \
  IDENTITY_KEYS="bench:0123456789abcdef0123456789abcdef" \
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.gateway.out" "${GATEWAY_BIN:-$BIN/gateway}" \
    >/dev/null 2>&1 &
  GATEWAY_PID=$!
  PIDS+=($GATEWAY_PID)
  wait_for "http://127.0.0.1:$GW_PORT/readyz" 60
  COUNTED=$(count "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" gateway_requests "${tokens[@]}")
  local refused; refused=$(gateway_refused)
  kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true; forget "$GATEWAY_PID"
  ((refused == 0)) || { say "the gateway answered $refused requests with another status than 200 ($*): no figure"; exit 1; }
}
say "counting the gateway"
count_gateway ONE_TOKEN
read -r GATEWAY_IR GATEWAY_ALLOC GATEWAY_N <<<"$COUNTED"
say "counting the gateway with 100 tokens in turn"
count_gateway MANY_TOKENS
read -r MANY_IR MANY_ALLOC MANY_N <<<"$COUNTED"

# The same with revocation on: 100,000 revoked sessions loaded (none of them the token's).
REVOCATION_DB="bench_revocation_$$"
revocation_db "$REVOCATION_DB"
say "counting the gateway with revocation on"
count_gateway ONE_TOKEN \
  REVOCATION_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$REVOCATION_DB" \
  REVOCATION_TOKEN_LIFETIME_SECS=10800
read -r REVOKING_IR REVOKING_ALLOC REVOKING_N <<<"$COUNTED"
drop_database "$REVOCATION_DB"

echo
echo "User-space instructions per proxied request (callgrind, wrk -t1 -c$CONNECTIONS -d$DURATION, warm cache)"
printf '  %-10s %8s instructions %6s allocations  (%s requests)\n' nginx "$NGINX_IR" "$NGINX_ALLOC" "$NGINX_N" \
  gateway "$GATEWAY_IR" "$GATEWAY_ALLOC" "$GATEWAY_N" "100 tokens" "$MANY_IR" "$MANY_ALLOC" "$MANY_N" \
  "revocation" "$REVOKING_IR" "$REVOKING_ALLOC" "$REVOKING_N"
echo "  ratio gateway / nginx: $(echo "$GATEWAY_IR $NGINX_IR" | awk '{ printf "%.2f", $1 / $2 }')"
echo "  ratio 100 tokens in turn / one (the token cache's keyed hash and lookup): $(echo "$MANY_IR $GATEWAY_IR" | awk '{ printf "%.3f", $1 / $2 }')"
echo "  ratio revocation on / off (100,000 revocations loaded): $(echo "$REVOKING_IR $GATEWAY_IR" | awk '{ printf "%.3f", $1 / $2 }')"
echo "  (the gateway's identity HMAC is overcounted: valgrind hides SHA-NI)"
