#!/bin/sh
# Initialises PGDATA on first start from POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB and runs
# the files in /docker-entrypoint-initdb.d/ (*.sh executed, or sourced when not executable;
# *.sql through psql) against the server on its local socket, as the public postgres image
# does; then runs the server listening on every interface.
set -eu
user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # UTF-8 like the public image (which uses en_US.utf8); C.UTF-8 needs no locales package.
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "${POSTGRES_DB:-$user}" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"${POSTGRES_DB:-$user}\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d "${POSTGRES_DB:-$user}" -f "$f" ;;
      *) if [ -e "$f" ]; then echo "postgres-entrypoint: ignoring $f"; fi ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*'
