#!/usr/bin/env bash
# Gateway benchmark: requests/s and p50/p99 for one small upstream reached
#   (a) directly, (b) through nginx as a plain reverse proxy (no auth),
#   (c) through the gateway with a warm token cache (one token),
#   (d) through the gateway with every token distinct (token cache off: a signature check
#       per request), for EdDSA, ES256 and RS256;
# plus verifications per second per algorithm, and the ratios (c)/(b) and (d)/(b).
#
# Fairness: wrk runs with 1 thread and the same connection count everywhere; wrk and the
# upstream share CPU $LOAD_CPU, the proxy under test (nginx with 1 worker, or the gateway,
# whose Tokio runtime then has 1 worker) gets CPU $PROXY_CPU alone. nginx logs no access
# lines and the gateway logs at warn, so neither pays for a per-request log line. Each
# figure is the median of $REPEATS runs after a warm-up.
#
# Usage: bench/gateway/run.sh
#   env: DURATION=8s WARMUP=2s CONNECTIONS=64 REPEATS=3 TOKENS=50000 ALGORITHMS="EdDSA ES256 RS256"
#        LOAD_CPU=0 PROXY_CPU=1 BASE_PORT=19100
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/gateway"
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
REPEATS=${REPEATS:-3}
TOKENS=${TOKENS:-50000}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
BASE_PORT=${BASE_PORT:-19100}
UP_PORT=$BASE_PORT NGINX_PORT=$((BASE_PORT + 1)) GW_PORT=$((BASE_PORT + 2)) ISSUER_PORT=$((BASE_PORT + 3))
read -r -a ALGORITHMS <<<"${ALGORITHMS:-EdDSA ES256 RS256}"
USER_PATH=/api/bench-user/tasks

say() { printf '%s\n' "$*" >&2; }

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  say "installing wrk and nginx-light (Debian)"
  apt-get install -y wrk nginx-light >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk nginx-light >/dev/null; }
fi
NGINX=$(command -v nginx)
for port in $UP_PORT $NGINX_PORT $GW_PORT $ISSUER_PORT; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    say "port $port is in use; set BASE_PORT to a free range"; exit 1
  fi
done

say "building (release)"
(cd "$ROOT" && cargo build --release -q -p gateway --bins --examples)
BIN="$ROOT/target/release"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# Waits until `curl $1` answers 200 (10 s deadline).
wait_for() {
  for _ in $(seq 1 200); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ]; then return 0; fi
    sleep 0.05
  done
  say "no 200 from $1"; return 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

RESULTS="$TMP/results"
: >"$RESULTS"
# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# measure <label> <pid> <url> [wrk args...]: warm-up, then $REPEATS runs; records the medians
# of requests/s, p50, p99 and the CPU microseconds <pid> (the server under test) spent per
# request. CPU per request barely moves with other load on the machine, unlike throughput.
measure() {
  local label=$1 pid=$2 url=$3; shift 3
  # Options after the URL: glibc getopt permutes them, and `--` must come last.
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$url" "$@" >/dev/null
  local runs="$TMP/runs"; : >"$runs"
  for _ in $(seq 1 "$REPEATS"); do
    local before; before=$(ticks "$pid")
    local result; result=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 5s "$url" "$@" \
      | awk '/^RESULT/ { print $2, $3, $4, $5, $6 }')
    local after; after=$(ticks "$pid")
    echo "$result" | awk -v b="$before" -v a="$after" -v hz="$TICK" \
      '{ print $1, $2, $3, $4, (a - b) / hz * 1e6 / $5 }' >>"$runs"
  done
  local failed; failed=$(awk '{ s += $4 } END { print s + 0 }' "$runs")
  if [ "$failed" != 0 ]; then say "$label: $failed failed requests; figures not valid"; exit 1; fi
  printf '%s %s %s %s %s\n' "$label" "$(cut -d' ' -f1 "$runs" | median)" \
    "$(cut -d' ' -f2 "$runs" | median)" "$(cut -d' ' -f3 "$runs" | median)" \
    "$(cut -d' ' -f5 "$runs" | median)" >>"$RESULTS"
  say "$(tail -1 "$RESULTS")"
}

# --- the upstream and the issuer ---------------------------------------------------------
taskset -c "$LOAD_CPU" "$BIN/examples/bench_upstream" "127.0.0.1:$UP_PORT" 2>/dev/null &
UPSTREAM_PID=$!
PIDS+=($UPSTREAM_PID)
ISSUER="http://127.0.0.1:$ISSUER_PORT"
say "minting $TOKENS distinct tokens per algorithm"
"$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" "$TOKENS" "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 1200); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
wait_for "http://127.0.0.1:$UP_PORT/"

# --- (a) direct ---------------------------------------------------------------------------
measure "a-direct" "$UPSTREAM_PID" "http://127.0.0.1:$UP_PORT$USER_PATH" -s "$HERE/report.lua"

# --- (b) nginx ----------------------------------------------------------------------------
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
chmod -R a+rwx "$TMP/nginx"
taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$NGINX_PORT/"
NGINX_WORKER=$(pgrep -P "${PIDS[-1]}" | head -1)
measure "b-nginx" "$NGINX_WORKER" "http://127.0.0.1:$NGINX_PORT$USER_PATH" -s "$HERE/report.lua"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'

# --- (c) and (d) the gateway ------------------------------------------------------------------
# start_gateway <token cache capacity>
start_gateway() {
  GATEWAY_LISTEN="127.0.0.1:$GW_PORT" TASKS_SERVICE_URL="http://127.0.0.1:$UP_PORT" \
  BETTER_AUTH_URL="$ISSUER" TOKEN_CACHE_CAPACITY="$1" \
  IDENTITY_KEYS="bench:0123456789abcdef0123456789abcdef" \
  RUST_LOG=warn LOG_FORMAT=json \
    taskset -c "$PROXY_CPU" "$BIN/gateway" 2>"$TMP/gateway.log" &
  GATEWAY_PID=$!
  wait_for "http://127.0.0.1:$GW_PORT/readyz"
}
stop_gateway() { kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true; }
cache_counts() {
  curl -s "http://127.0.0.1:$GW_PORT/metrics" \
    | awk '/^gateway_token_cache_hits_total/ { h = $2 } /^gateway_token_cache_misses_total/ { m = $2 } END { printf "hits=%d misses=%d", h, m }'
}

for alg in "${ALGORITHMS[@]}"; do
  start_gateway 100000
  measure "c-gateway-warm-$alg" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" -s "$HERE/report.lua" \
    -H "Authorization: Bearer $(cat "$TMP/tokens/warm-$alg.txt")"
  say "  token cache: $(cache_counts)"
  stop_gateway
  start_gateway 0
  measure "d-gateway-distinct-$alg" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" \
    -s "$HERE/tokens.lua" -- "$TMP/tokens/tokens-$alg.txt"
  say "  token cache: $(cache_counts)"
  stop_gateway
done

# --- verifications per second, one thread, token cache off ---------------------------------
VERIFY="$TMP/verify"
: >"$VERIFY"
for alg in "${ALGORITHMS[@]}"; do
  rate=$(taskset -c "$PROXY_CPU" "$BIN/examples/verify_rate" "$ISSUER" "$TMP/tokens/tokens-$alg.txt" 2>/dev/null)
  echo "$alg $rate" >>"$VERIFY"
done

# --- report ---------------------------------------------------------------------------------
echo
echo "Gateway benchmark: wrk -t1 -c$CONNECTIONS -d$DURATION, median of $REPEATS; $(nproc) CPUs, load on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU"
printf '%-28s %12s %10s %10s %14s\n' scenario "requests/s" "p50 ms" "p99 ms" "server CPU us/req"
while read -r label rps p50 p99 cpu; do
  printf '%-28s %12.0f %10.3f %10.3f %14.1f\n' "$label" "$rps" "$p50" "$p99" "$cpu"
done <"$RESULTS"
echo
read -r _ nginx_rps _ nginx_p99 nginx_cpu < <(grep '^b-nginx ' "$RESULTS")
printf '%-8s %20s %13s %14s %20s %13s\n' alg "(c)/(b) throughput" "(c)/(b) p99" "(c)/(b) CPU" "(d)/(b) throughput" "(d)/(b) p99"
for alg in "${ALGORITHMS[@]}"; do
  read -r _ c_rps _ c_p99 c_cpu < <(grep "^c-gateway-warm-$alg " "$RESULTS")
  read -r _ d_rps _ d_p99 _ < <(grep "^d-gateway-distinct-$alg " "$RESULTS")
  awk -v a="$alg" -v cr="$c_rps" -v cp="$c_p99" -v cc="$c_cpu" -v dr="$d_rps" -v dp="$d_p99" \
    -v nr="$nginx_rps" -v np="$nginx_p99" -v nc="$nginx_cpu" \
    'BEGIN { printf "%-8s %20.3f %13.3f %14.3f %20.3f %13.3f\n", a, cr / nr, cp / np, cc / nc, dr / nr, dp / np }'
done
echo
echo "Verifications per second (one thread, token cache off):"
while read -r alg rate; do printf '  %-8s %10s\n' "$alg" "$rate"; done <"$VERIFY"
echo "Aim: (c)/(b) throughput >= 0.90 and p99 ratio <= 1.10."
