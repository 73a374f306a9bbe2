#!/usr/bin/env bash
# The gateway's share of a whole request (issue 17): the same load, listing 20 tasks as each
# of 100 users in turn, against tasks-service on PostgreSQL reached directly (the load
# generator signs an identity credential per request, as the gateway does) and through the
# gateway (a bearer JWT per user; the gateway verifies it, warm token cache, and signs), in
# one run. Prints both throughputs and p99s and the ratios gateway/direct, each the median of
# $REPEATS per-pair ratios (a direct run beside every gateway run, before it and after it
# in turn; every scenario one pair per round, round-robin), beside the noise
# floor: direct paired with itself the same way. Then each process's CPU per request, each
# hop's share of the whole request's CPU (steadier from run to run than any wall-clock
# ratio), and the throughput ratio that CPU alone predicts.
#
# With NGINX=1 (the default), nginx is measured in the gateway's place too, as a plain hop
# (2 workers, keep-alive upstream, the load signing its credentials as when direct): what any
# proxy costs here, the reference the gateway's share is judged against.
#
# Each proxy reaches tasks-service over each of $TRANSPORTS: `unix`, the socket a sidecar
# shares with its service in a pod (TASKS_SOCKET; deploy/k8s does this), and `tcp`, loopback
# TCP; labels of the socket's runs end in -unix.
#
# Load generator: tasks-service/examples/loadgen.rs (reqwest, $CONCURRENCY clients, closed
# loop); issuer: gateway/examples/mint_tokens.rs (EdDSA). Nothing is pinned: the load, the
# gateway, the service and PostgreSQL share the machine's CPUs, as in a pod.
#
# Usage: bench/e2e/share.sh
#   env: SECONDS_PER_RUN=8 WARMUP_SECONDS=2 CONCURRENCY=32 REPEATS=5 USERS=100
#        LAYOUTS="default shared:1" (a gateway per entry, each measured in the same run:
#          `default` is the gateway in its defaults (the balanced layout, a worker per CPU);
#          a runtime layout runs one worker per CPU, as nginx's `auto`, and <layout>:<n> n
#          workers; an entry <name>=<gateway binary> is another build, or a wrapper that execs
#          one, in its defaults, to A/B a change in one run)
#        TRANSPORTS="unix tcp"
#        NGINX=1
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres). Prints figures; asserts nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# For nginx_conf (the one nginx configuration the benchmarks use), layout_workers, median and
# end_all; the helpers below replace its others.
# shellcheck source=bench/gateway/common.sh
source "$ROOT/bench/gateway/common.sh"

SECS=${SECONDS_PER_RUN:-8}
WARMUP=${WARMUP_SECONDS:-2}
CONC=${CONCURRENCY:-32}
REPEATS=${REPEATS:-5}
USERS=${USERS:-100}
ADMIN_DB=postgres://postgres@127.0.0.1:5432
DB="tasks_share_$$"
KEY="bench:bench-secret-0123456789abcdef-0123456789"
say() { printf '%s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

psql -h 127.0.0.1 -U postgres -Atqc 'SELECT 1' >/dev/null 2>&1 || {
  say "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1
}

say "building (release)"
cargo build --release -q -p tasks-service --bin tasks-service --example loadgen
cargo build --release -q -p gateway --bin gateway --example mint_tokens
BIN=target/release
LOADGEN=$BIN/examples/loadgen

TMP=$(mktemp -d)
PIDS=()
# Every process started here is in $PIDS from its start; any other background job is ended too,
# and one that ignores SIGTERM is killed after 5 s (end_all), so a failure stops the script promptly.
cleanup() {
  # shellcheck disable=SC2046 # a list of pids
  end_all "${PIDS[@]}" $(jobs -p)
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_for() {
  for _ in $(seq 1 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  say "no 200 from $1"; return 1
}

SERVICE_PORT=$(free_port) ISSUER_PORT=$(free_port)
SERVICE_SOCKET=$TMP/tasks.sock
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB"
IDENTITY_KEYS="$KEY" DATABASE_URL="$ADMIN_DB/$DB" TASKS_LISTEN="127.0.0.1:$SERVICE_PORT" \
  TASKS_SOCKET="$SERVICE_SOCKET" RUST_LOG=warn DB_POOL_SIZE=16 "$BIN/tasks-service" &
PIDS+=($!)
wait_for "http://127.0.0.1:$SERVICE_PORT/readyz"

say "seeding: $USERS users with 20 tasks each"
# As the superuser (bypasses row-level security); the service reads them under it.
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "
  INSERT INTO tasks (user_id, title, description)
  SELECT 'bench-user-' || u, 'Seeded task ' || t, 'for the benchmark'
  FROM generate_series(0, $USERS - 1) u, generate_series(1, 20) t;
  ANALYZE tasks;"

ISSUER="http://127.0.0.1:$ISSUER_PORT"
MINT_USERS=$USERS "$BIN/examples/mint_tokens" "127.0.0.1:$ISSUER_PORT" "$ISSUER" 1 "$TMP/tokens" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 600); do [ -e "$TMP/tokens/ready" ] && break; sleep 0.1; done
[ -e "$TMP/tokens/ready" ] || { say "token minting did not finish"; exit 1; }
THROUGH="$TMP/tokens/users-EdDSA.txt"
DIRECT="$TMP/direct-users.txt"
cut -d' ' -f1 "$THROUGH" >"$DIRECT"

SERVICE_PID=${PIDS[0]}
# One gateway per runtime layout, all up for the whole run (an idle one costs nothing
# measurable); each label's proxy processes, for the CPU figures.
read -r -a LAYOUTS <<<"${LAYOUTS:-default shared:1}"
read -r -a TRANSPORTS <<<"${TRANSPORTS:-unix tcp}"
# upstream <transport>: how a proxy reaches tasks-service over it; suffix <transport>: its labels' ending.
upstream() { if [ "$1" = unix ]; then echo "unix:$SERVICE_SOCKET"; else echo "$SERVICE_PORT"; fi; }
suffix() { if [ "$1" = unix ]; then echo -unix; fi; }
declare -A PROXY_PIDS PROXY_URLS
GATEWAYS=() # each entry's label: gateway-<layout>[-unix], or gateway-<name>[-unix] for name=binary
for layout in "${LAYOUTS[@]}"; do
  for transport in "${TRANSPORTS[@]}"; do
    port=$(free_port) admin=$(free_port) name=gateway-${layout%%=*}$(suffix "$transport")
    GATEWAYS+=("$name")
    gateway=$BIN/gateway settings=()
    if [[ $layout == *=* ]]; then
      gateway=${layout#*=}
    elif [[ $layout != default ]]; then
      settings=(RUNTIME_LAYOUT="${layout%%:*}" WORKER_THREADS="$(layout_workers "$layout")")
    fi
    tasks_url=$(upstream "$transport")
    [ "$transport" = tcp ] && tasks_url=http://127.0.0.1:$tasks_url
    env "${settings[@]}" GATEWAY_LISTEN="127.0.0.1:$port" ADMIN_LISTEN="127.0.0.1:$admin" \
      TASKS_SERVICE_URL="$tasks_url" BETTER_AUTH_URL="$ISSUER" \
      IDENTITY_KEYS="$KEY" RUST_LOG=warn LOG_FORMAT=json \
      "$gateway" 2>"$TMP/$name.log" &
    PIDS+=($!)
    PROXY_PIDS[$name]=$!
    PROXY_URLS[$name]="http://127.0.0.1:$port"
    wait_for "http://127.0.0.1:$port/readyz"
  done
done

NGINX=${NGINX:-1}
if [ "$NGINX" = 1 ]; then
  if ! command -v nginx >/dev/null; then
    say "installing nginx-light (Debian)"
    apt-get install -y nginx-light >/dev/null || { apt-get update >/dev/null && apt-get install -y nginx-light >/dev/null; }
  fi
  NGINXES=()
  for transport in "${TRANSPORTS[@]}"; do
    name=nginx$(suffix "$transport") port=$(free_port) dir=$TMP/$name.d
    NGINXES+=("$name")
    # Workers as root: tasks-service's socket is owner and group only, as in the pod.
    NGINX_WORKERS=auto start_nginx "$dir" "$port" "$(upstream "$transport")" "user root;"
    PROXY_URLS[$name]="http://127.0.0.1:$port"
    PROXY_PIDS[$name]=$NGINX_WORKER_PIDS
  done
fi

# Where the CPU goes, per run: clock ticks (user + system, every thread) used by the gateway,
# tasks-service and every PostgreSQL process, and by the whole machine (/proc/stat); the
# rest of the machine's busy time is the load generator's and whatever else runs.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# Context switches of every thread of the given processes: all of them (how often the proxy
# went to sleep and was woken, the cost that batching at high load hides), then the
# involuntary ones alone (how often it was preempted while it had work).
proc_switches() {
  local pid
  for pid in "$@"; do cat /proc/"$pid"/task/*/status 2>/dev/null; done \
    | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } /^nonvoluntary_ctxt_switches:/ { p += $2 }
           END { print n + 0, p + 0 }'
}
# cpu_snapshot <proxy pids>: ticks of the proxy, the service, PostgreSQL; machine busy, idle;
# the proxy's context switches, all and involuntary.
cpu_snapshot() {
  # shellcheck disable=SC2046,SC2086
  echo "$(proc_ticks $1) $(proc_ticks "$SERVICE_PID") $(proc_ticks $(pgrep -x postgres))" \
    "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)" "$(proc_switches $1)"
}

# run <label> <base url> <users file> <seconds>: one loadgen run, its row appended to
# $TMP/<label> as "req/s p50_us p99_us"; any failed request voids the run.
# Also appends to $TMP/<label>.cpu the CPU microseconds per request of the gateway,
# tasks-service, PostgreSQL and the rest, the machine's busy share, and the proxy's context
# switches per request, all and involuntary.
run() {
  local label=$1 base=$2 users=$3 secs=$4 row before after proxy=${PROXY_PIDS[${1}]:-}
  before=$(cpu_snapshot "$proxy")
  row=$(LOADGEN_USERS="$users" LOADGEN_LABEL="$label" "$LOADGEN" http "$base" "$KEY" bench-user-0 list "$secs" "$CONC")
  after=$(cpu_snapshot "$proxy")
  local errors; errors=$(cut -f6 <<<"$row")
  if [ "$errors" != 0 ]; then say "$label: $errors failed requests; figures not valid"; exit 1; fi
  cut -f3-5 <<<"$row" | tr '\t' ' ' >>"$TMP/$label"
  local rps; rps=$(cut -f3 <<<"$row")
  echo "$before $after" | awk -v n="$(awk -v r="$rps" -v s="$secs" 'BEGIN { print r * s }')" -v us="$TICK_US" \
    '{ gw = $8 - $1; ts = $9 - $2; pg = $10 - $3; busy = $11 - $4; idle = $12 - $5
       sw = $13 - $6; pre = $14 - $7
       printf "%.1f %.1f %.1f %.1f %.2f %.2f %.2f\n", gw * us / n, ts * us / n, pg * us / n,
         (busy - gw - ts - pg) * us / n, busy / (busy + idle), sw / n, pre / n }' >>"$TMP/$label.cpu"
}
DIRECT_URL="http://127.0.0.1:$SERVICE_PORT"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "measuring: $REPEATS pairs per scenario, $SECS s each, $CONC clients, $USERS users"
PROXIES=("${GATEWAYS[@]}")
[ "$NGINX" = 1 ] && PROXIES+=("${NGINXES[@]}")
# users_of <label>: the gateway's runs send a bearer token per user, every other run signs.
users_of() { if [[ $1 == gateway-* ]]; then echo "$THROUGH"; else echo "$DIRECT"; fi; }
run warmup "$DIRECT_URL" "$DIRECT" "$WARMUP"
for name in "${PROXIES[@]}"; do run warmup "${PROXY_URLS[$name]}" "$(users_of "$name")" "$WARMUP"; done
# pair <i> <label> <base url> <users file>: one run of <label> beside a direct run, the
# direct one first in odd rounds and second in even ones, so that whatever a run leaves
# behind (warm caches, a busy neighbour) falls on both sides alike; the pair's ratios
# (throughput, p99) to $TMP/<label>.ratios.
pair() {
  local i=$1 label=$2 base=$3 users=$4
  if [ $((i % 2)) = 1 ]; then
    run direct "$DIRECT_URL" "$DIRECT" "$SECS"
    run "$label" "$base" "$users" "$SECS"
  else
    run "$label" "$base" "$users" "$SECS"
    run direct "$DIRECT_URL" "$DIRECT" "$SECS"
  fi
  paste -d' ' <(tail -1 "$TMP/$label") <(tail -1 "$TMP/direct") \
    | awk '{ print $1 / $4, $3 / $6 }' >>"$TMP/$label.ratios"
  say "  $label $(tail -1 "$TMP/$label") / direct $(tail -1 "$TMP/direct")"
}
# Round-robin: every scenario gets a pair in each round, so a machine that slows down or
# speeds up over the minutes of the run does so for all of them alike, and their CPU
# figures can be compared with each other, not only with their own direct runs.
for i in $(seq 1 "$REPEATS"); do
  say "round $i of $REPEATS"
  pair "$i" direct-again "$DIRECT_URL" "$DIRECT"
  for name in "${PROXIES[@]}"; do pair "$i" "$name" "${PROXY_URLS[$name]}" "$(users_of "$name")"; done
done

col() { cut -d' ' -f"$2" "$TMP/$1" | median; }
spread() { cut -d' ' -f"$2" "$TMP/$1.ratios" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }
echo
echo "End to end: list 20 tasks, $USERS users in turn, $CONC clients, $SECS s runs, median of $REPEATS pairs; $(nproc) CPUs, nothing pinned"
printf '%-34s %10s %10s %10s\n' scenario "req/s" "p50 ms" "p99 ms"
for label in direct "${PROXIES[@]}"; do
  case $label in
    direct) name="tasks-service directly" ;;
    gateway-*) name="through the gateway, ${label#gateway-}" ;;
    nginx*) name="through nginx${label#nginx} (a plain hop)" ;;
  esac
  printf '%-34s %10.0f %10.2f %10.2f\n' "$name" "$(col "$label" 1)" \
    "$(awk -v v="$(col "$label" 2)" 'BEGIN { print v / 1000 }')" \
    "$(awk -v v="$(col "$label" 3)" 'BEGIN { print v / 1000 }')"
done
printf '%-34s %22s %22s\n' "ratio to direct (median of pairs)" throughput p99
for label in "${PROXIES[@]}" direct-again; do
  note=""; [ "$label" = direct-again ] && note="  (direct against itself: the noise floor)"
  printf '%-34s %7.3f [%s] %7.3f [%s]%s\n' "$label" \
    "$(cut -d' ' -f1 "$TMP/$label.ratios" | median)" "$(spread "$label" 1)" \
    "$(cut -d' ' -f2 "$TMP/$label.ratios" | median)" "$(spread "$label" 2)" "$note"
done
echo "Aim (issue 17): through-gateway throughput >= 0.90 of direct, p99 <= 1.20x."
echo
echo "CPU per request (microseconds, medians of the runs; rest: the load generator and anything else;"
echo "switches: the proxy's context switches per request, every thread; preempted: the involuntary ones)"
printf '%-34s %8s %8s %8s %8s %8s %10s %9s %9s\n' scenario proxy service postgres rest total "machine busy" switches preempted
declare -A PROXY_US TOTAL_US # each label's median CPU per request: the proxy's, every process's
for label in direct "${PROXIES[@]}"; do
  cpu() { cut -d' ' -f"$1" "$TMP/$label.cpu" | median; }
  proxy=$(cpu 1) service=$(cpu 2) postgres=$(cpu 3) rest=$(cpu 4)
  PROXY_US[$label]=$proxy
  TOTAL_US[$label]=$(awk -v a="$proxy" -v b="$service" -v c="$postgres" -v d="$rest" 'BEGIN { print a + b + c + d }')
  printf '%-34s %8.1f %8.1f %8.1f %8.1f %8.1f %10.2f %9.2f %9.2f\n' "$label" "$proxy" "$service" "$postgres" "$rest" \
    "${TOTAL_US[$label]}" "$(cpu 5)" "$(cpu 6)" "$(cpu 7)"
done
# What each hop costs of the whole request's CPU, the figure that moves least from run to
# run on a noisy machine, and the throughput ratio that CPU alone predicts for a machine as
# busy as when direct (direct's CPU per request over the proxied one's): where the measured
# ratio strays far from it, something other than the hop changed between the runs.
echo
echo "The hop's cost in CPU (medians of the runs above)"
printf '%-34s %14s %30s\n' scenario "share of CPU" "throughput ratio CPU predicts"
for label in "${PROXIES[@]}"; do
  printf '%-34s %14.3f %30.3f\n' "$label" \
    "$(awk -v p="${PROXY_US[$label]}" -v t="${TOTAL_US[$label]}" 'BEGIN { print p / t }')" \
    "$(awk -v d="${TOTAL_US[direct]}" -v t="${TOTAL_US[$label]}" 'BEGIN { print d / t }')"
done
echo "Load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
