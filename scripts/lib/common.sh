# Shared shell helpers for scripts/: logging, PostgreSQL, readiness waits. Sourced, not run.

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Makes sure the machine's PostgreSQL answers on 127.0.0.1:5432, starting the cluster if not.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
  command -v pg_ctlcluster >/dev/null || die "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is missing: install and start PostgreSQL"
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 0.5
  done
  die "PostgreSQL did not become ready on 127.0.0.1:5432 (try: pg_ctlcluster --skip-systemctl-redirect $version main start)"
}

# Creates database $1 on the local server if it does not exist.
ensure_database() {
  local name=$1
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    log "creating database $name"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE \"$name\"" \
      || psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 \
      || die "could not create database $name"
  fi
}

# Waits until URL $2 answers 2xx, or process $3 dies, for at most $4 seconds (default 60).
wait_ready() {
  local name=$1 url=$2 pid=$3 seconds=${4:-60}
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready (see its log above)"
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  die "$name was not ready at $url within ${seconds}s"
}

# Installs a folder's npm dependencies from its lockfile when they are missing or stale.
ensure_npm_deps() {
  local dir=$1
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing npm dependencies in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Installs schemathesis (pinned, with everything it pulls in) into target/schemathesis, a
# virtualenv of its own, when it is missing or the pins changed. e2e/tests/contract.rs runs it.
ensure_schemathesis() {
  local venv=target/schemathesis requirements=specs/contracts/schemathesis/requirements.txt
  if [ -x "$venv/bin/st" ] && [ "$venv/.installed" -nt "$requirements" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 is missing: install it (apt-get install -y python3 python3-venv) for the contract test"
  log "installing schemathesis into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
    || die "could not install schemathesis from $requirements"
  touch "$venv/.installed"
}

# Makes sure Debian's chromium is installed for the browser test (browsers cannot be
# downloaded by npm here; playwright-core drives /usr/bin/chromium).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" != 0 ]; then
    die "/usr/bin/chromium is missing: install Debian's chromium (sudo apt-get install -y chromium)"
  fi
  log "installing Debian's chromium for the browser test"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || die "could not install chromium (apt-get install -y chromium)"
}

# A random secret of N (default 48) URL-safe characters, for local development only.
random_secret() {
  head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c "${1:-48}"
}
