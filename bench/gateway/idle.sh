#!/usr/bin/env bash
# Idle-connection benchmark: what an idle keep-alive client connection costs in resident
# memory, for the gateway (HTTP1_ENGINE=lean and hyper, and HTTP/2) and for nginx side by
# side, and then the throughput ratio gateway/nginx, so a memory change can be shown not to
# cost throughput.
#
# For each server and each N in $COUNTS: a fresh server process; one authenticated request
# (the key set fetched, the caches warm); then gateway/examples/idle_clients.rs opens N
# keep-alive connections, each carrying one authenticated request whose answer it reads whole
# before leaving the connection idle; after $SETTLE seconds VmRSS is read from
# /proc/PID/status (nginx: its one worker), and the opener confirms that all N connections
# are still open (else the figure is void and the script stops). Per connection:
# (RSS_N - RSS_0) / N. A fresh process per N, so that one N's high-water mark does not
# colour the next.
#
# Throughput: wrk -t1 against the gateway (lean, warm token) and nginx, paired as in run.sh
# (each gateway run just after an nginx run), the median of the per-pair ratios.
#
# Usage: bench/gateway/idle.sh
#   env: COUNTS="0 1000 5000" SETTLE=3 DURATION=8s CONNECTIONS=64 REPEATS=3
#        LOAD_CPU=0 PROXY_CPU=1 BASE_PORT=19400 PRIORITY=-10
#        SERVERS="nginx lean hyper h2" (h2: the gateway with HTTP/2 prior-knowledge clients)
#        THROUGHPUT=1 (0: memory only) MEMORY=1 (0: throughput only)
#        BIN=<directory of prebuilt binaries>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/gateway"
read -r -a COUNTS <<<"${COUNTS:-0 1000 5000}"
read -r -a SERVERS <<<"${SERVERS:-nginx lean hyper h2}"
SETTLE=${SETTLE:-3}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-64}
REPEATS=${REPEATS:-3}
THROUGHPUT=${THROUGHPUT:-1}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
BASE_PORT=${BASE_PORT:-19400}
PRIORITY=${PRIORITY:--10}
UP_PORT=$BASE_PORT NGINX_PORT=$((BASE_PORT + 1)) GW_PORT=$((BASE_PORT + 2)) ISSUER_PORT=$((BASE_PORT + 3))
ADMIN_PORT=$((BASE_PORT + 4))
USER_PATH=${USER_PATH:-/api/bench-user/tasks}

# shellcheck source=bench/gateway/common.sh
source "$HERE/common.sh"

# Every process here inherits it: the servers hold a socket per client connection (the
# gateway and the upstream one more per dedicated upstream connection), the opener one each.
ulimit -n "$(ulimit -Hn)"
LARGEST=$(printf '%s\n' "${COUNTS[@]}" | sort -n | tail -1)
if [ "$(ulimit -n)" -lt $((2 * LARGEST + 256)) ]; then
  say "open-file limit $(ulimit -n) is too low for $LARGEST connections"; exit 1
fi

if [ "$(nice -n "$PRIORITY" nice 2>/dev/null)" != "$PRIORITY" ]; then
  say "cannot run at nice $PRIORITY here; measuring at the normal priority"
  PRIORITY=0
fi
PINNED=(nice -n "$PRIORITY" taskset -c)
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  say "installing wrk and nginx-light (Debian)"
  apt-get install -y wrk nginx-light >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk nginx-light >/dev/null; }
fi
NGINX=$(command -v nginx)
for port in $UP_PORT $NGINX_PORT $GW_PORT $ISSUER_PORT $ADMIN_PORT; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    say "port $port is in use; set BASE_PORT to a free range"; exit 1
  fi
done

# BIN: a directory holding binaries built earlier (gateway, examples/...), e.g. a "before"
# build to compare with; else the working tree is built.
if [ -n "${BIN:-}" ]; then say "using the binaries in $BIN"; else build; fi
scratch

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# --- the upstream and the issuer ---------------------------------------------------------
"${PINNED[@]}" "$LOAD_CPU" "$BIN/examples/bench_upstream" "127.0.0.1:$UP_PORT" 2>/dev/null &
PIDS+=($!)
ISSUER="http://127.0.0.1:$ISSUER_PORT"
"$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" 1 "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 600); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
TOKEN_FILE="$TMP/tokens/warm-EdDSA.txt"
wait_for "http://127.0.0.1:$UP_PORT/"

# --- the servers ----------------------------------------------------------------------------
# start <server>: sets $SERVER_PID (the process whose RSS is read) and $SERVER_URL; the server
# is in $PIDS until stop, so that any failure ends it with the script.
# nginx gets room for every connection (worker_connections counts client and upstream ones).
nginx_conf "$TMP/nginx" "$NGINX_PORT" "$UP_PORT" "worker_rlimit_nofile $(ulimit -n);"
sed -i "s/worker_connections [0-9]*/worker_connections $(( $(ulimit -n) - 64 ))/" "$TMP/nginx/nginx.conf"
start() {
  case $1 in
    nginx)
      "${PINNED[@]}" "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" &
      SERVER_MAIN=$!
      PIDS+=("$SERVER_MAIN")
      SERVER_URL="http://127.0.0.1:$NGINX_PORT"
      wait_for "$SERVER_URL/"
      SERVER_PID=$(pgrep -P "$SERVER_MAIN" | head -1)
      ;;
    lean | hyper | h2)
      local engine=$1; [ "$engine" = h2 ] && engine=lean
      # HEADER_READ_TIMEOUT_SECS: hyper's HTTP/1.1 counts idle keep-alive time against it
      # (config.rs), and at the default 10 s the hyper figures would lose connections while
      # 5,000 are opened and settle.
      GATEWAY_LISTEN="127.0.0.1:$GW_PORT" ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
      TASKS_SERVICE_URL="http://127.0.0.1:$UP_PORT" BETTER_AUTH_URL="$ISSUER" \
      HTTP1_ENGINE="$engine" HEADER_READ_TIMEOUT_SECS=60 \
      IDENTITY_KEYS="bench:0123456789abcdef0123456789abcdef" RUST_LOG=warn LOG_FORMAT=json \
        "${PINNED[@]}" "$PROXY_CPU" "$BIN/gateway" 2>>"$TMP/gateway.log" &
      SERVER_MAIN=$!
      PIDS+=("$SERVER_MAIN")
      SERVER_PID=$SERVER_MAIN
      SERVER_URL="http://127.0.0.1:$GW_PORT"
      wait_for "$SERVER_URL/readyz"
      ;;
  esac
}
stop() { kill "$SERVER_MAIN"; wait "$SERVER_MAIN" 2>/dev/null || true; forget "$SERVER_MAIN"; }

# active_rss: RSS in KB after one second of light traffic on 4 other connections and one
# second more. The gateway's allocator (mimalloc) returns freed pages to the system lazily,
# during later allocations: a process that frees memory and then does nothing keeps it
# resident, though free for its own reuse. The idle figures are given both ways.
active_rss() {
  "${PINNED[@]}" "$LOAD_CPU" wrk -t1 -c4 -d1s -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    "$SERVER_URL$USER_PATH" >/dev/null
  sleep 1
  rss_kb "$SERVER_PID"
}

# idle_rss <server> <n>: sets $RSS to "quiet active", the RSS in KB of a fresh <server>
# holding <n> idle connections: after $SETTLE seconds of quiet, then after light traffic
# (active_rss). Run in this shell, not in $(...): its failures must reach the EXIT trap,
# which ends the server and the opener, and stop the script.
idle_rss() {
  local server=$1 n=$2
  start "$server"
  local h2=0; [ "$server" = h2 ] && h2=1
  # The first request: the key set fetched and the token verified before anything is read.
  curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$TOKEN_FILE")" "$SERVER_URL$USER_PATH" \
    || { say "$server: first request failed"; exit 1; }
  local rss
  if [ "$n" -eq 0 ]; then
    sleep "$SETTLE"
    rss="$(rss_kb "$SERVER_PID") $(active_rss)"
  else
    rm -f "$TMP/ctl" && mkfifo "$TMP/ctl"
    H2=$h2 "${PINNED[@]}" "$LOAD_CPU" "$BIN/examples/idle_clients" "127.0.0.1:${SERVER_URL##*:}" "$n" \
      "$USER_PATH" "$TOKEN_FILE" <"$TMP/ctl" >"$TMP/opener.out" 2>"$TMP/opener.err" &
    local opener=$!
    PIDS+=("$opener")
    exec 3>"$TMP/ctl"
    for _ in $(seq 1 1200); do grep -q '^opened' "$TMP/opener.out" && break; kill -0 "$opener" 2>/dev/null || break; sleep 0.05; done
    grep -q "^opened $n\$" "$TMP/opener.out" || { say "$server: opener failed: $(cat "$TMP/opener.err")"; exit 1; }
    sleep "$SETTLE"
    rss="$(rss_kb "$SERVER_PID") $(active_rss)"
    echo >&3; exec 3>&-
    wait "$opener" || true
    forget "$opener"
    local open; open=$(awk '/^still open/ { print $3 }' "$TMP/opener.out")
    [ "$open" = "$n" ] || { say "$server: only $open of $n connections still open; figure void"; exit 1; }
  fi
  stop
  RSS=$rss
}

RESULTS="$TMP/rss"
: >"$RESULTS"
[ "${MEMORY:-1}" = 1 ] || SERVERS=()
for server in "${SERVERS[@]}"; do
  for n in "${COUNTS[@]}"; do
    idle_rss "$server" "$n"
    echo "$server $n $RSS" >>"$RESULTS"
    say "$server: $n idle connections, RSS (quiet, active) $RSS KB"
  done
done

echo
echo "Idle keep-alive connections (each carried one authenticated request first): RSS after ${SETTLE} s"
echo "of quiet, and after 1 s of light traffic on 4 other connections (the allocator returns freed"
echo "pages lazily, during later allocations)"
printf '%-8s %6s | %10s %10s %10s | %10s %10s %10s\n' server idle "quiet KB" "+KB" "B/conn" "active KB" "+KB" "B/conn"
for server in "${SERVERS[@]}"; do
  read -r base_q base_a <<<"$(awk -v s="$server" '$1 == s && $2 == 0 { print $3, $4 }' "$RESULTS")"
  while read -r s n quiet active; do
    [ "$s" = "$server" ] || continue
    if [ "$n" -eq 0 ] || [ -z "$base_q" ]; then
      printf '%-8s %6d | %10d %10s %10s | %10d %10s %10s\n' "$s" "$n" "$quiet" - - "$active" - -
    else
      printf '%-8s %6d | %10d %10d %10.0f | %10d %10d %10.0f\n' "$s" "$n" \
        "$quiet" $((quiet - base_q)) "$(echo "($quiet - $base_q) * 1024 / $n" | bc -l)" \
        "$active" $((active - base_a)) "$(echo "($active - $base_a) * 1024 / $n" | bc -l)"
    fi
  done <"$RESULTS"
done

[ "$THROUGHPUT" = 1 ] || exit 0

# --- throughput, paired against nginx ---------------------------------------------------------
TICK=$(getconf CLK_TCK)
# run_rps <pid> <url> [wrk args...]: "requests/s cpu-us-per-request" of one wrk run, the CPU
# being <pid>'s (the server under test: unlike throughput, it barely moves with other load
# on the machine); stops the script on a failed request.
run_rps() {
  local pid=$1 url=$2; shift 2
  local before; before=$(proc_ticks "$pid")
  local line; line=$("${PINNED[@]}" "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 5s "$url" \
    -s "$HERE/report.lua" "$@" | awk '/^RESULT/ { print $2, $5, $6 }')
  local after; after=$(proc_ticks "$pid")
  read -r rps failed total <<<"$line"
  [ "$failed" = 0 ] || { say "$url: $failed failed requests; figures not valid"; exit 1; }
  echo "$rps $(echo "($after - $before) / $TICK * 1000000 / $total" | bc -l)"
}
start nginx
NGINX_MAIN=$SERVER_MAIN NGINX_PID=$SERVER_PID NGINX_URL="$SERVER_URL$USER_PATH"
start lean
GW_URL="$SERVER_URL$USER_PATH"
AUTH=(-H "Authorization: Bearer $(cat "$TOKEN_FILE")")
run_rps "$NGINX_PID" "$NGINX_URL" >/dev/null && run_rps "$SERVER_PID" "$GW_URL" "${AUTH[@]}" >/dev/null
: >"$TMP/ratios"
for _ in $(seq 1 "$REPEATS"); do
  nginx_run=$(run_rps "$NGINX_PID" "$NGINX_URL")
  gw_run=$(run_rps "$SERVER_PID" "$GW_URL" "${AUTH[@]}")
  echo "$gw_run $nginx_run" | awk '{ printf "%.3f %.0f %.0f %.3f %.1f %.1f\n", $1 / $3, $1, $3, $2 / $4, $2, $4 }' >>"$TMP/ratios"
done
stop
SERVER_MAIN=$NGINX_MAIN stop
echo
echo "Throughput, wrk -t1 -c$CONNECTIONS -d$DURATION, $REPEATS pairs (gateway lean, warm token; nginx just before):"
awk '{ printf "  gateway %8d req/s %6.1f us/req   nginx %8d req/s %6.1f us/req   ratios: throughput %s, CPU %s\n", $2, $5, $3, $6, $1, $4 }' "$TMP/ratios"
echo "  median ratio gateway/nginx: throughput $(cut -d' ' -f1 "$TMP/ratios" | median), CPU per request $(cut -d' ' -f4 "$TMP/ratios" | median)"
