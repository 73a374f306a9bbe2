#!/usr/bin/env bash
# Makes the compose stack's env file from deploy/.env.example, every REPLACE-ME replaced by a
# fresh random secret of its own (48 letters and digits: safe inside a database URL).
#   deploy/new-env.sh deploy/.env     # writes it, readable by you alone; never overwrites
#   deploy/new-env.sh                 # prints it
# Keep the file for as long as the stack's volumes live: the database's logins and Better
# Auth's encrypted signing keys were made with these secrets.
set -euo pipefail
template="$(dirname "$0")/.env.example"
out=${1:-}

secret() { head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | head -c 48; }

render() {
  local line
  printf '# Made by deploy/new-env.sh on %s from .env.example.\n' "$(date -u +%Y-%m-%d)"
  while IFS= read -r line || [ -n "$line" ]; do
    # Comments keep their words; only values are filled in.
    while [[ $line != '#'* && $line == *REPLACE-ME* ]]; do
      line=${line/REPLACE-ME/$(secret)}
    done
    printf '%s\n' "$line"
  done <"$template"
}

if [ -z "$out" ]; then
  render
elif [ -e "$out" ]; then
  echo "new-env.sh: $out exists; keeping it (remove it first for new secrets, with \`down -v\` for the volumes made with the old ones)" >&2
else
  (umask 077 && render >"$out")
  echo "new-env.sh: wrote $out with fresh secrets" >&2
fi
