#!/bin/sh
# One PostgreSQL login per part of the stack, none of them a superuser. Run once, when the
# postgres container initialises an empty data directory (compose mounts this file into
# /docker-entrypoint-initdb.d/; the server then listens on its local socket only).
#
#   tasks_service       owns database `tasks` (its migrations); cannot bypass row-level
#                       security, so the policy binds it as it is.
#   better_auth         owns database `better_auth` (Better Auth's migrations, revocation.sql).
#   gateway_revocation  the gateways' revocation feed: CONNECT to better_auth and, through
#                       auth_revocation_reader, SELECT on auth_revocation (granted by
#                       revocation.sql), nothing else: not the session table, whose rows
#                       are bearer secrets, and not `tasks`.
#
# The superuser's password (POSTGRES_PASSWORD) is then used by nobody but an operator.
# Passwords come from the environment (deploy/.env, made by deploy/new-env.sh) and are read
# with psql's \getenv, so they never appear on a command line.
set -eu

# The superuser's too: the image takes any password, even the template's REPLACE-ME.
for var in POSTGRES_PASSWORD TASKS_DB_PASSWORD BETTER_AUTH_DB_PASSWORD REVOCATION_DB_PASSWORD; do
  eval "value=\${$var:-}"
  if [ ${#value} -lt 16 ]; then
    echo "roles.sh: $var must be set to a random password of at least 16 characters (deploy/new-env.sh makes one)" >&2
    exit 1
  fi
done

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres <<'SQL'
\getenv tasks_pw TASKS_DB_PASSWORD
\getenv auth_pw BETTER_AUTH_DB_PASSWORD
\getenv revocation_pw REVOCATION_DB_PASSWORD

CREATE ROLE tasks_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'tasks_pw';
ALTER DATABASE tasks OWNER TO tasks_service;

CREATE ROLE better_auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'auth_pw';
CREATE DATABASE better_auth OWNER better_auth;

CREATE ROLE auth_revocation_reader NOLOGIN;
CREATE ROLE gateway_revocation LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
  IN ROLE auth_revocation_reader PASSWORD :'revocation_pw';

-- Each database is open to its own roles only (owners keep every right on their own).
REVOKE ALL ON DATABASE tasks FROM PUBLIC;
REVOKE ALL ON DATABASE better_auth FROM PUBLIC;
GRANT CONNECT ON DATABASE better_auth TO auth_revocation_reader;
SQL
echo "roles.sh: logins tasks_service, better_auth and gateway_revocation made; none is a superuser"
