#!/usr/bin/env bash
# What the upstream's transport costs a proxied request: the gateway (and nginx, for
# reference) in front of the same one-thread upstream, once over loopback TCP and once over
# a Unix socket (`TASKS_SERVICE_URL=unix:...`, what a sidecar in a pod can use), measured in
# turn, round after round, the order alternating. For each: requests/s, p99, and CPU
# microseconds per request of the proxy, of the upstream and of the whole machine (the load
# generator included), medians of the rounds; then each socket/TCP ratio, and the spread of the
# per-round ratios. Nothing pinned; warm token cache, one token.
#
# The CPU figures are the ones to read on a shared machine: every round measures both
# transports within seconds of each other, so the machine's drift falls on both.
#
# Usage: bench/gateway/transport.sh
#   env: ROUNDS=8 DURATION=4s CONNECTIONS=32 BASE_PORT=19300 NGINX=1 TIMEOUT=5s
#        (wrk's per-request timeout: a request that times out, fails, or is answered other
#        than 2xx/3xx voids the run, and stops the script)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-4s}
CONNECTIONS=${CONNECTIONS:-32}
BASE_PORT=${BASE_PORT:-19300}
NGINX=${NGINX:-1}
TIMEOUT=${TIMEOUT:-5s}
# shellcheck source=bench/gateway/common.sh
source "$ROOT/bench/gateway/common.sh"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { say "installing wrk and nginx-light (Debian)"; \
    apt-get install -y wrk nginx-light >/dev/null || { apt-get update >/dev/null && \
    apt-get install -y wrk nginx-light >/dev/null; }; break; }
done
build
scratch

UP_PORT=$BASE_PORT ISSUER_PORT=$((BASE_PORT + 1))
SOCKET=$TMP/upstream.sock
"$BIN/examples/bench_upstream" "127.0.0.1:$UP_PORT" "$SOCKET" 2>/dev/null &
PIDS+=($!)
UPSTREAM_PID=$!
ISSUER="http://127.0.0.1:$ISSUER_PORT"
MINT_USERS=1 "$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" 1 "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 300); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
read -r USER TOKEN <"$TMP/tokens/users-EdDSA.txt"
wait_for "http://127.0.0.1:$UP_PORT/"

# Each label: a proxy and the transport it reaches the upstream by.
declare -A PORT PROXY_PIDS
LABELS=()
next_port=$((BASE_PORT + 2))
for transport in tcp unix; do
  label=gateway-$transport port=$next_port admin=$((next_port + 1))
  next_port=$((next_port + 2))
  upstream=http://127.0.0.1:$UP_PORT
  [ "$transport" = unix ] && upstream=unix:$SOCKET
  # A worker per CPU, as nginx's `auto` beside it: the transport is what differs here.
  WORKER_THREADS=$(nproc) GATEWAY_LISTEN="127.0.0.1:$port" ADMIN_LISTEN="127.0.0.1:$admin" TASKS_SERVICE_URL="$upstream" \
    BETTER_AUTH_URL="$ISSUER" IDENTITY_KEYS="bench:0123456789abcdef0123456789abcdef" \
    RUST_LOG=warn LOG_FORMAT=json "$BIN/gateway" 2>"$TMP/$label.log" &
  PIDS+=($!)
  PROXY_PIDS[$label]=$!
  PORT[$label]=$port
  LABELS+=("$label")
  wait_for "http://127.0.0.1:$port/readyz"
done
if [ "$NGINX" = 1 ]; then
  for transport in tcp unix; do
    label=nginx-$transport port=$next_port dir=$TMP/$label.d
    next_port=$((next_port + 1))
    upstream=$UP_PORT
    [ "$transport" = unix ] && upstream=unix:$SOCKET
    # Workers as root, to open the upstream's socket whatever its mode.
    NGINX_WORKERS=auto start_nginx "$dir" "$port" "$upstream" "user root;"
    PORT[$label]=$port
    LABELS+=("$label")
    PROXY_PIDS[$label]=$NGINX_WORKER_PIDS
  done
fi

TICK_US=$((1000000 / $(getconf CLK_TCK)))
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# measure <label>: one wrk run; appends "req/s p99_ms proxy_us upstream_us machine_us" to $TMP/<label>.
# Its figures from report.lua's RESULT line, as run.sh's; any failed request (an answer other
# than 2xx/3xx, a connect, read or write error, a timeout) voids the run and stops the script.
measure() {
  local label=$1 before after out
  # shellcheck disable=SC2086
  before="$(proc_ticks ${PROXY_PIDS[$label]}) $(proc_ticks "$UPSTREAM_PID") $(busy)"
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout "$TIMEOUT" -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:${PORT[$label]}/api/$USER/tasks" -s "$ROOT/bench/gateway/report.lua")
  # shellcheck disable=SC2086
  after="$(proc_ticks ${PROXY_PIDS[$label]}) $(proc_ticks "$UPSTREAM_PID") $(busy)"
  local rps p99 failed requests
  read -r rps _ p99 failed requests <<<"$(awk '/^RESULT/ { print $2, $3, $4, $5, $6 }' <<<"$out")"
  if [ "${failed:-}" != 0 ] || [ "${requests:-0}" = 0 ]; then
    say "$label: ${failed:-an unknown number of} failed requests of ${requests:-?}; figures not valid"; exit 1
  fi
  echo "$before $after" | awk -v n="$requests" -v us="$TICK_US" -v rps="$rps" -v p99="$p99" \
    '{ printf "%.0f %.3f %.2f %.2f %.2f\n", rps, p99, ($4 - $1) * us / n, ($5 - $2) * us / n, ($6 - $3) * us / n }' \
    >>"$TMP/$label"
}
say "warming up"
for label in "${LABELS[@]}"; do DURATION=1s measure "$label"; rm "$TMP/$label"; done
say "measuring: $ROUNDS rounds of $DURATION per label, $CONNECTIONS connections"
for round in $(seq 1 "$ROUNDS"); do
  order=("${LABELS[@]}")
  # Odd rounds TCP first, even rounds the socket first.
  if [ $((round % 2)) = 0 ]; then
    order=()
    for label in "${LABELS[@]}"; do [[ $label == *-unix ]] && order+=("$label"); done
    for label in "${LABELS[@]}"; do [[ $label == *-tcp ]] && order+=("$label"); done
  fi
  for label in "${order[@]}"; do measure "$label"; done
  say "  round $round: $(for l in "${LABELS[@]}"; do printf '%s %s  ' "$l" "$(tail -1 "$TMP/$l" | cut -d' ' -f1,3)"; done)"
done

col() { cut -d' ' -f"$2" "$TMP/$1" | median; }
echo
echo "The upstream's transport: $ROUNDS rounds, wrk -t2 -c$CONNECTIONS $DURATION, one-thread upstream; $(nproc) CPUs, nothing pinned; medians"
printf '%-14s %9s %8s %12s %13s %12s\n' label "req/s" "p99 ms" "proxy µs/req" "upstream µs" "machine µs"
for label in "${LABELS[@]}"; do
  printf '%-14s %9.0f %8.2f %12.2f %13.2f %12.2f\n' "$label" "$(col "$label" 1)" "$(col "$label" 2)" \
    "$(col "$label" 3)" "$(col "$label" 4)" "$(col "$label" 5)"
done
echo
echo "Unix socket / TCP, median of the per-round ratios [lowest-highest]"
printf '%-8s %20s %20s %20s %20s\n' proxy "req/s" "proxy µs" "upstream µs" "machine µs"
for proxy in gateway nginx; do
  [ -e "$TMP/$proxy-tcp" ] || continue
  printf '%-8s' "$proxy"
  for c in 1 3 4 5; do
    paste -d' ' <(cut -d' ' -f"$c" "$TMP/$proxy-unix") <(cut -d' ' -f"$c" "$TMP/$proxy-tcp") \
      | awk '{ print $1 / $2 }' >"$TMP/ratios"
    printf ' %7.3f [%s]' "$(median <"$TMP/ratios")" \
      "$(sort -n "$TMP/ratios" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }')"
  done
  echo
done
