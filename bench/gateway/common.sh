# Sourced by the benchmarks (bench/gateway/*.sh, bench/e2e/share.sh): what they share, including the
# one nginx configuration they measure against. Expects $ROOT, the repository.

say() { printf '%s\n' "$*" >&2; }

# build: the gateway and its benchmark examples, release; sets $BIN.
build() {
  say "building (release)"
  (cd "$ROOT" && cargo build --release -q -p gateway --bins --examples)
  BIN="$ROOT/target/release"
}

# scratch: a temporary directory $TMP and a list $PIDS of background processes, both
# cleaned up when the script exits, on every path: a process started in the background must
# go into $PIDS at once (and out of it, with forget, once stopped and waited for), or a
# failure would leave it running, and cleanup's wait for it would hang the script.
scratch() {
  TMP=$(mktemp -d)
  PIDS=()
  trap cleanup EXIT
}
cleanup() {
  # $PIDS, and any other background job of this shell still running.
  # shellcheck disable=SC2046 # a list of pids
  end_all "${PIDS[@]}" $(jobs -p)
  rm -rf "$TMP"
}
# forget <pid>: a process stopped and waited for, no longer cleanup's to end.
forget() {
  local kept=() pid
  for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  PIDS=("${kept[@]}")
}
# running <pid>: whether it runs still (a zombie, exited and not yet waited for, does not).
running() {
  local state
  state=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}
# end_all <pid>...: SIGTERM to each, up to 5 s for them to exit, then SIGKILL to any left, so
# that a failing script exits promptly; then waits for those that are this shell's children.
end_all() {
  (($#)) || return 0
  local pid left=()
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    left=()
    for pid in "$@"; do if running "$pid"; then left+=("$pid"); fi; done
    ((${#left[@]})) || break
    sleep 0.1
  done
  for pid in "${left[@]}"; do say "pid $pid still running 5 s after SIGTERM: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; done
  wait "$@" 2>/dev/null || true
}

# median: the median of the numbers on stdin, one a line; of an even count, the mean of the
# two middle ones.
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# wait_for <url> [seconds]: until `curl <url>` answers 200 (default deadline 10 s).
wait_for() {
  local url=$1 seconds=${2:-10}
  for _ in $(seq 1 $((seconds * 20))); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ]; then return 0; fi
    sleep 0.05
  done
  say "no 200 from $url"; return 1
}

# nginx_conf <dir> <listen port> <upstream port or unix:/path> [top-level directive...]: writes
# <dir>/nginx.conf, a plain reverse proxy with $NGINX_WORKERS workers (default 1; `auto` is one
# per CPU), no access log and kept-alive upstream connections, as a careful operator would set
# it up; logs and temp files in <dir>.
nginx_conf() {
  local dir=$1 port=$2 upstream=$3; shift 3
  # A bare port is on loopback; anything else (unix:/path) is nginx's own address syntax.
  [[ $upstream =~ ^[0-9]+$ ]] && upstream=127.0.0.1:$upstream
  mkdir -p "$dir/logs"
  {
    printf '%s\n' "$@"
    cat <<CONF
worker_processes ${NGINX_WORKERS:-1};
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  upstream backend { server $upstream; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
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
  } >"$dir/nginx.conf"
  chmod -R a+rwx "$dir"
}

# start_nginx <dir> <listen port> <upstream> [directive...]: writes the configuration
# (nginx_conf) and starts nginx in the background, its master in $PIDS; returns once it
# answers on the port, with its workers' pids in $NGINX_WORKER_PIDS.
start_nginx() {
  local dir=$1 port=$2 main
  nginx_conf "$@"
  # Without a caller's NGINX switch: nginx reads a variable of that name as sockets to inherit.
  env -u NGINX "$(command -v nginx)" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  main=$!
  PIDS+=("$main")
  wait_for "http://127.0.0.1:$port/healthz"
  NGINX_WORKER_PIDS=$(pgrep -P "$main" | tr '\n' ' ')
}

# proc_ticks <pid>...: the CPU time (user + system, every thread, in clock ticks) these
# processes have used so far; one that has exited counts nothing.
proc_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}

# Creates database $1 standing in for Better Auth's, with the revocation table holding 100,000
# revoked sessions (32-character ids, none a benchmark token's session); drop_database $1 ends it.
revocation_db() {
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $1" >/dev/null
  psql -q -h 127.0.0.1 -U postgres -d "$1" >/dev/null <<'SQL'
CREATE TABLE auth_revocation (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('session', 'user')),
  subject text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO auth_revocation (kind, subject)
  SELECT 'session', md5(n::text) FROM generate_series(1, 100000) AS n;
SQL
}
drop_database() { psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE $1 WITH (FORCE)" >/dev/null; }

# The workers of a LAYOUTS entry <layout>[:<n>] (run.sh, share.sh): n, or one per CPU the
# script may use, as nginx's `auto`.
layout_workers() { if [[ $1 == *:* ]]; then echo "${1#*:}"; else nproc; fi; }
