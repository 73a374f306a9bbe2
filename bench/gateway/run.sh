#!/usr/bin/env bash
# Gateway benchmark: requests/s and p50/p99 for one small upstream reached
#   (a) directly, (b) through nginx as a plain reverse proxy (no auth),
#   (c) through the gateway with a warm token cache (one token),
#   (d) through the gateway with every token distinct (token cache off: a signature check
#       per request), for EdDSA, ES256 and RS256;
#   (e) as (c) for the first algorithm, but with HTTP1_ENGINE=hyper: what the lean HTTP/1.1
#       engine (gateway/src/http1.rs) saves over hyper, measured in the same run;
# plus verifications per second per algorithm, the issuer's fetch rate and the time to accept a
# freshly published key under an unknown-kid flood, and the ratios (c)/(b) and (d)/(b), read
# against the noise floor: nginx paired with itself, the same way.
#
# Unpinned (issue 17), reported beside the pinned figures: every process free to use every
# CPU, as a sidecar shares its pod's cores with the service and the load; wrk with 2 threads,
# nginx with one worker per CPU (`worker_processes auto`), the gateway as each entry of
# $LAYOUTS says: `default`, its defaults (the balanced layout, a worker per CPU); a layout
# (`RUNTIME_LAYOUT`) with one worker per CPU as nginx has, or `<layout>:<n>` with n
# (WORKER_THREADS), e.g. "shared:1" for one thread; the same upstream, warm token cache;
# each gateway run paired with an nginx run as above, and nginx paired with itself for the
# noise floor.
#
# Fairness: wrk runs with 1 thread and the same connection count everywhere; wrk and the
# upstream share CPU $LOAD_CPU, the proxy under test (nginx with 1 worker, or the gateway,
# whose Tokio runtime then has 1 worker) gets CPU $PROXY_CPU alone. nginx logs no access
# lines and the gateway logs at warn, so neither pays for a per-request log line. Each
# figure is the median of $REPEATS runs after a warm-up. Everything measured (load, upstream,
# proxies) runs at nice $PRIORITY, so the machine's other daemons interrupt it less; the
# same for nginx and the gateway.
#
# Noise: these machines are shared, and throughput drifts by tens of percent within minutes.
# So the ratios against nginx are paired: nginx stays up, and every gateway run is preceded
# by an nginx run; each ratio printed is the median of the per-pair ratios.
#
# Usage: bench/gateway/run.sh
#   env: DURATION=8s WARMUP=2s CONNECTIONS=64 REPEATS=3 TOKENS=50000 ALGORITHMS="EdDSA ES256 RS256"
#        LOAD_CPU=0 PROXY_CPU=1 BASE_PORT=19100 PRIORITY=-10
#        SCENARIOS="pinned unpinned" LAYOUTS="default per-core shared:1"
#        (a LAYOUTS entry may also be <name>=<path to a gateway binary>: that build, in its
#        defaults, measured in the same run, e.g. LAYOUTS="default before=/tmp/gateway")
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
PRIORITY=${PRIORITY:--10}
UP_PORT=$BASE_PORT NGINX_PORT=$((BASE_PORT + 1)) GW_PORT=$((BASE_PORT + 2)) ISSUER_PORT=$((BASE_PORT + 3))
# nginx of the unpinned scenario, one worker per CPU.
UNPINNED_NGINX_PORT=$((BASE_PORT + 5))
read -r -a SCENARIOS <<<"${SCENARIOS:-pinned unpinned}"
read -r -a LAYOUTS <<<"${LAYOUTS:-default per-core shared:1}"
wants() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
# The label of an unpinned gateway run: u-gateway-<layout>, or u-gateway-<name> for name=binary.
layout_label() { echo "u-gateway-${1%%=*}"; }
# The gateway serves /metrics on its admin listener only.
ADMIN_PORT=$((BASE_PORT + 4))
read -r -a ALGORITHMS <<<"${ALGORITHMS:-EdDSA ES256 RS256}"
USER_PATH=/api/bench-user/tasks

# shellcheck source=bench/gateway/common.sh
source "$HERE/common.sh"
# "${PINNED[@]}" <cpu> <command...>: the command on that CPU at nice $PRIORITY. nice and
# taskset exec it, so `$!` is the command's own pid.
if [ "$(nice -n "$PRIORITY" nice 2>/dev/null)" != "$PRIORITY" ]; then
  say "cannot run at nice $PRIORITY here; measuring at the normal priority"
  PRIORITY=0
fi
PINNED=(nice -n "$PRIORITY" taskset -c)
# How wrk and the proxy under test start: pinned to their CPUs until the unpinned scenario.
LOAD=("${PINNED[@]}" "$LOAD_CPU")
PROXY=("${PINNED[@]}" "$PROXY_CPU")
WRK_THREADS=1

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  say "installing wrk and nginx-light (Debian)"
  apt-get install -y wrk nginx-light >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk nginx-light >/dev/null; }
fi
NGINX=$(command -v nginx)
for port in $UP_PORT $NGINX_PORT $GW_PORT $ISSUER_PORT $ADMIN_PORT $UNPINNED_NGINX_PORT; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    say "port $port is in use; set BASE_PORT to a free range"; exit 1
  fi
done

build
scratch
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

RESULTS="$TMP/results"
: >"$RESULTS"
TICK=$(getconf CLK_TCK)

# warm_up <url> [wrk args...]: one unrecorded run.
# Options after the URL: glibc getopt permutes them, and `--` must come last.
warm_up() {
  local url=$1; shift
  "${LOAD[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" "$@" >/dev/null
}

# run_once <label> <pids> <url> [wrk args...]: one run, appended to $RUNS/<label> as
# "requests/s p50 p99 failed cpu", with the CPU microseconds <pids> (the server under test,
# a space-separated list for nginx's workers) spent per request: unlike throughput, it
# barely moves with other load on the machine.
RUNS="$TMP/runs"
mkdir -p "$RUNS"
NGINX_LABEL=b-nginx
run_once() {
  local label=$1 pid=$2 url=$3; shift 3
  # shellcheck disable=SC2086 # a list of pids
  local before; before=$(proc_ticks $pid)
  local result; result=$("${LOAD[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s "$url" "$@" \
    | awk '/^RESULT/ { print $2, $3, $4, $5, $6 }')
  # shellcheck disable=SC2086
  local after; after=$(proc_ticks $pid)
  echo "$result" | awk -v b="$before" -v a="$after" -v hz="$TICK" \
    '{ print $1, $2, $3, $4, (a - b) / hz * 1e6 / $5 }' >>"$RUNS/$label"
  local failed; failed=$(tail -1 "$RUNS/$label" | cut -d' ' -f4)
  if [ "$failed" != 0 ]; then say "$label: $failed failed requests; figures not valid"; exit 1; fi
}

# summarise <label>: the medians of its runs, as a line of $RESULTS.
summarise() {
  local label=$1 runs="$RUNS/$1"
  printf '%s %s %s %s %s\n' "$label" "$(cut -d' ' -f1 "$runs" | median)" \
    "$(cut -d' ' -f2 "$runs" | median)" "$(cut -d' ' -f3 "$runs" | median)" \
    "$(cut -d' ' -f5 "$runs" | median)" >>"$RESULTS"
  say "$(tail -1 "$RESULTS")"
}

# measure <label> <pid> <url> [wrk args...]: warm-up, $REPEATS runs, their medians.
measure() {
  local label=$1 pid=$2 url=$3; shift 3
  warm_up "$url" "$@"
  for _ in $(seq 1 "$REPEATS"); do run_once "$label" "$pid" "$url" "$@"; done
  summarise "$label"
}

# paired <label> <pid> <url> [wrk args...]: like measure, but each run follows an nginx run
# (recorded as $NGINX_LABEL),
# and the pair's ratios (requests/s, p99, CPU per request) go to $RUNS/<label>.ratios.
paired() {
  local label=$1 pid=$2 url=$3; shift 3
  warm_up "$NGINX_URL" -s "$HERE/report.lua" && warm_up "$url" "$@"
  for _ in $(seq 1 "$REPEATS"); do
    run_once "$NGINX_LABEL" "$NGINX_WORKER" "$NGINX_URL" -s "$HERE/report.lua"
    run_once "$label" "$pid" "$url" "$@"
    paste -d' ' <(tail -1 "$RUNS/$label") <(tail -1 "$RUNS/$NGINX_LABEL") \
      | awk '{ print $1 / $6, $3 / $8, $5 / $10 }' >>"$RUNS/$label.ratios"
  done
}

# ratio <label> <column>: the median of the label's paired ratios in that column (1 req/s,
# 2 p99, 3 CPU).
ratio() { cut -d' ' -f"$2" "$RUNS/$1.ratios" | median; }
# spread <label> <column>: the lowest and highest of those ratios.
spread() { cut -d' ' -f"$2" "$RUNS/$1.ratios" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }

# --- the upstream and the issuer ---------------------------------------------------------
"${LOAD[@]}" "$BIN/examples/bench_upstream" "127.0.0.1:$UP_PORT" 2>/dev/null &
UPSTREAM_PID=$!
PIDS+=($UPSTREAM_PID)
ISSUER="http://127.0.0.1:$ISSUER_PORT"
say "minting $TOKENS distinct tokens per algorithm"
"$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" "$TOKENS" "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 1200); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
# The token files are tens of megabytes: written back now, not during the first measurements.
sync
wait_for "http://127.0.0.1:$UP_PORT/"

# --- the gateway --------------------------------------------------------------------------
# start_gateway <token cache capacity> [HTTP/1.1 engine]
# GATEWAY_ENV: extra NAME=value settings for the next start (revocation scenario).
# In $PIDS while it runs: a failure (a run voided, no readiness) ends it with the script.
GATEWAY_ENV=()
start_gateway() {
  env "${GATEWAY_ENV[@]}" \
  GATEWAY_LISTEN="127.0.0.1:$GW_PORT" ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
  TASKS_SERVICE_URL="http://127.0.0.1:$UP_PORT" \
  BETTER_AUTH_URL="$ISSUER" TOKEN_CACHE_CAPACITY="$1" HTTP1_ENGINE="${2:-lean}" \
  IDENTITY_KEYS="bench:0123456789abcdef0123456789abcdef" \
  RUST_LOG=warn LOG_FORMAT=json \
    "${PROXY[@]}" "${GATEWAY_BIN:-$BIN/gateway}" 2>"$TMP/gateway.log" &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  wait_for "http://127.0.0.1:$GW_PORT/readyz"
}
stop_gateway() { kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true; forget "$GATEWAY_PID"; }
cache_counts() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" \
    | awk '/^gateway_token_cache_hits_total/ { h = $2 } /^gateway_token_cache_misses_total/ { m = $2 } END { printf "hits=%d misses=%d", h, m }'
}

if wants pinned; then
  # --- (a) direct ---------------------------------------------------------------------------
  measure "a-direct" "$UPSTREAM_PID" "http://127.0.0.1:$UP_PORT$USER_PATH" -s "$HERE/report.lua"

  # --- (b) nginx ----------------------------------------------------------------------------
  nginx_conf "$TMP/nginx" "$NGINX_PORT" "$UP_PORT"
  "${PINNED[@]}" "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$NGINX_PORT/"
  NGINX_WORKER=$(pgrep -P "${PIDS[-1]}" | head -1)
  NGINX_URL="http://127.0.0.1:$NGINX_PORT$USER_PATH"
  # nginx stays up, idle between its runs, for the paired runs below.

  # --- the noise floor: nginx paired with itself ---------------------------------------------
  # The same proxy measured twice in a row: how far from 1.0 a paired ratio lands when nothing
  # differs, so the gateway's ratios can be read against it.
  paired "n-nginx-again" "$NGINX_WORKER" "$NGINX_URL" -s "$HERE/report.lua"

  # --- (c) and (d) the gateway ------------------------------------------------------------------
  for alg in "${ALGORITHMS[@]}"; do
    start_gateway 100000
    paired "c-gateway-warm-$alg" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" -s "$HERE/report.lua" \
      -H "Authorization: Bearer $(cat "$TMP/tokens/warm-$alg.txt")"
    say "  token cache: $(cache_counts)"
    stop_gateway
    start_gateway 0
    paired "d-gateway-distinct-$alg" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" \
      -s "$HERE/tokens.lua" -- "$TMP/tokens/tokens-$alg.txt"
    say "  token cache: $(cache_counts)"
    stop_gateway
  done
  FIRST=${ALGORITHMS[0]}

  # --- (f) warm cache with revocation on: 100,000 revocations loaded -------------------------
  # The same load as (c), with the gateway listening to a PostgreSQL revocation feed holding
  # 100,000 revoked sessions (none of them the benchmark token's): what the per-request check
  # and the set's memory cost. RSS is read once per gateway, with and without the set, as soon
  # as it is ready (the set loaded: /readyz waits for the feed) and before any request.
  rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
  REVOCATION_DB="bench_revocation_$$"
  revocation_db "$REVOCATION_DB"
  start_gateway 100000
  RSS_OFF=$(rss_kb "$GATEWAY_PID")
  stop_gateway
  # The benchmark tokens live 3 hours: the revocation window must cover them.
  GATEWAY_ENV=(REVOCATION_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$REVOCATION_DB"
               REVOCATION_TOKEN_LIFETIME_SECS=10800)
  start_gateway 100000
  RSS_ON=$(rss_kb "$GATEWAY_PID")
  ENTRIES=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^gateway_revocation_entries/ { print $2 }')
  paired "f-gateway-revocation-$FIRST" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" -s "$HERE/report.lua" \
    -H "Authorization: Bearer $(cat "$TMP/tokens/warm-$FIRST.txt")"
  stop_gateway
  GATEWAY_ENV=()
  drop_database "$REVOCATION_DB"

  start_gateway 100000 hyper
  paired "e-gateway-hyper-warm-$FIRST" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" -s "$HERE/report.lua" \
    -H "Authorization: Bearer $(cat "$TMP/tokens/warm-$FIRST.txt")"
  stop_gateway

  # The gateway scenarios' medians, and nginx's over all its paired runs.
  for label in b-nginx $(for alg in "${ALGORITHMS[@]}"; do echo "c-gateway-warm-$alg d-gateway-distinct-$alg"; done) \
      "e-gateway-hyper-warm-$FIRST" "f-gateway-revocation-$FIRST"; do
    summarise "$label"
  done

  # --- verifications per second, one thread, token cache off ---------------------------------
  VERIFY="$TMP/verify"
  : >"$VERIFY"
  for alg in "${ALGORITHMS[@]}"; do
    rate=$("${PINNED[@]}" "$PROXY_CPU" "$BIN/examples/verify_rate" "$ISSUER" "$TMP/tokens/tokens-$alg.txt" 2>/dev/null)
    echo "$alg $rate" >>"$VERIFY"
  done

  # --- key rotation under an unknown-kid flood: issuer fetch rate, time to accept a new key ----
  FLOOD="$TMP/flood"
  "${PINNED[@]}" "$PROXY_CPU" "$BIN/examples/unknown_kid_flood" 12 2000 3 >"$FLOOD" 2>/dev/null
fi

# --- (g) unpinned: every process free to use every CPU, as in a pod -------------------------
if wants unpinned; then
  ALL_CPUS=$(taskset -pc $$ | awk -F': ' '{ print $2 }')
  LOAD=(nice -n "$PRIORITY")
  PROXY=(nice -n "$PRIORITY")
  WRK_THREADS=2
  # The same upstream (one thread), now free to run anywhere.
  taskset -apc "$ALL_CPUS" "$UPSTREAM_PID" >/dev/null
  NGINX_WORKERS=auto nginx_conf "$TMP/nginx-unpinned" "$UNPINNED_NGINX_PORT" "$UP_PORT"
  "${PROXY[@]}" "$NGINX" -p "$TMP/nginx-unpinned" -c "$TMP/nginx-unpinned/nginx.conf" \
    -e "$TMP/nginx-unpinned/logs/error.log" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$UNPINNED_NGINX_PORT/"
  NGINX_WORKER=$(pgrep -P "${PIDS[-1]}" | tr '\n' ' ')
  NGINX_URL="http://127.0.0.1:$UNPINNED_NGINX_PORT$USER_PATH"
  NGINX_LABEL=u-nginx
  paired "u-nginx-again" "$NGINX_WORKER" "$NGINX_URL" -s "$HERE/report.lua"
  for layout in "${LAYOUTS[@]}"; do
    # An entry is `default`, a layout, optionally with a worker count ("per-core:2",
    # "shared:1"), or <name>=<gateway binary>: another build in its defaults, to A/B a change
    # in one run.
    GATEWAY_ENV=()
    if [[ $layout == *=* ]]; then
      GATEWAY_BIN=${layout#*=}
    elif [[ $layout != default ]]; then
      GATEWAY_ENV=(RUNTIME_LAYOUT="${layout%%:*}" WORKER_THREADS="$(layout_workers "$layout")")
    fi
    start_gateway 100000
    GATEWAY_BIN=""
    paired "$(layout_label "$layout")" "$GATEWAY_PID" "http://127.0.0.1:$GW_PORT$USER_PATH" -s "$HERE/report.lua" \
      -H "Authorization: Bearer $(cat "$TMP/tokens/warm-${ALGORITHMS[0]}.txt")"
    say "  token cache: $(cache_counts)"
    stop_gateway
  done
  GATEWAY_ENV=()
  # u-nginx: every unpinned nginx run that preceded a paired one.
  for label in u-nginx $(for layout in "${LAYOUTS[@]}"; do layout_label "$layout"; done); do
    summarise "$label"
  done
fi

# --- report ---------------------------------------------------------------------------------
if wants pinned; then
  echo
  echo "Gateway benchmark: wrk -t1 -c$CONNECTIONS -d$DURATION, median of $REPEATS; $(nproc) CPUs, load on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU, nice $PRIORITY"
  printf '%-28s %12s %10s %10s %14s\n' scenario "requests/s" "p50 ms" "p99 ms" "server CPU us/req"
  while read -r label rps p50 p99 cpu; do
    printf '%-28s %12.0f %10.3f %10.3f %14.1f\n' "$label" "$rps" "$p50" "$p99" "$cpu"
  done <"$RESULTS"
  echo
  echo "Ratios to nginx: the median of the per-pair ratios ($REPEATS pairs each, nginx run just before)"
  printf '%-8s %20s %13s %14s %20s %13s\n' alg "(c)/(b) throughput" "(c)/(b) p99" "(c)/(b) CPU" "(d)/(b) throughput" "(d)/(b) p99"
  for alg in "${ALGORITHMS[@]}"; do
    printf '%-8s %20.3f %13.3f %14.3f %20.3f %13.3f\n' "$alg" \
      "$(ratio "c-gateway-warm-$alg" 1)" "$(ratio "c-gateway-warm-$alg" 2)" "$(ratio "c-gateway-warm-$alg" 3)" \
      "$(ratio "d-gateway-distinct-$alg" 1)" "$(ratio "d-gateway-distinct-$alg" 2)"
  done
  printf '%-8s %20.3f %13.3f %14.3f   (e: HTTP1_ENGINE=hyper, warm cache)\n' "$FIRST" \
    "$(ratio "e-gateway-hyper-warm-$FIRST" 1)" "$(ratio "e-gateway-hyper-warm-$FIRST" 2)" "$(ratio "e-gateway-hyper-warm-$FIRST" 3)"
  printf '%-8s %20.3f %13.3f %14.3f   (nginx against itself: the noise floor)\n' nginx \
    "$(ratio n-nginx-again 1)" "$(ratio n-nginx-again 2)" "$(ratio n-nginx-again 3)"
  printf '%-8s %20.3f %13.3f %14.3f   (f: revocation on, %s entries loaded)\n' "$FIRST" \
    "$(ratio "f-gateway-revocation-$FIRST" 1)" "$(ratio "f-gateway-revocation-$FIRST" 2)" "$(ratio "f-gateway-revocation-$FIRST" 3)" "$ENTRIES"
  awk -v f="$(ratio "f-gateway-revocation-$FIRST" 1)" -v c="$(ratio "c-gateway-warm-$FIRST" 1)" -v on="$RSS_ON" -v off="$RSS_OFF" \
    'BEGIN { printf "Revocation on/off (%s): throughput %.3f of (c); RSS at start %d KB with 100,000 revocations, %d KB without (+%d KB)\n", "'"$FIRST"'", f / c, on, off, on - off }'
  echo "Spread of the per-pair ratios, lowest-highest: throughput / p99"
  for label in n-nginx-again $(for alg in "${ALGORITHMS[@]}"; do echo "c-gateway-warm-$alg"; done); do
    printf '  %-26s %s / %s\n' "$label" "$(spread "$label" 1)" "$(spread "$label" 2)"
  done
  echo
  echo "Verifications per second (one thread, token cache off):"
  while read -r alg rate; do printf '  %-8s %10s\n' "$alg" "$rate"; done <"$VERIFY"
  echo "Aim: (c)/(b) throughput >= 0.90 and p99 ratio <= 1.10."
  echo
  echo "Unknown-kid flood with a key rotation (gateway/examples/unknown_kid_flood.rs, cooldown 3 s):"
  sed 's/^/  /' "$FLOOD"
fi

if wants unpinned; then
  echo
  echo "Unpinned (every process free to use CPUs $ALL_CPUS, as in a pod): wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, nginx worker_processes auto, the gateway in its defaults (u-gateway-default) or as its row names, one worker per CPU unless a count is given, warm cache (${ALGORITHMS[0]}); median of $REPEATS"
  printf '%-28s %12s %10s %10s %14s\n' scenario "requests/s" "p50 ms" "p99 ms" "server CPU us/req"
  grep '^u-' "$RESULTS" | while read -r label rps p50 p99 cpu; do
    printf '%-28s %12.0f %10.3f %10.3f %14.1f\n' "$label" "$rps" "$p50" "$p99" "$cpu"
  done
  echo "Unpinned ratios to nginx: the median of the per-pair ratios ($REPEATS pairs each) [lowest-highest]"
  printf '%-34s %22s %22s %8s\n' "" throughput p99 CPU
  for label in u-nginx-again $(for layout in "${LAYOUTS[@]}"; do layout_label "$layout"; done); do
    note=""; [ "$label" = u-nginx-again ] && note="(nginx against itself: the noise floor)"
    printf '%-34s %7.3f [%s] %7.3f [%s] %8.3f %s\n' "$label" \
      "$(ratio "$label" 1)" "$(spread "$label" 1)" "$(ratio "$label" 2)" "$(spread "$label" 2)" "$(ratio "$label" 3)" "$note"
  done
  echo "Aim (issue 17): unpinned throughput ratio >= 1.0 and p99 ratio <= 1.10."
  echo "Load average at the start / the end: $LOAD_AT_START / $(cut -d' ' -f1-3 /proc/loadavg)"
fi
