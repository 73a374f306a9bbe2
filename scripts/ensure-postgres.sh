#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL is up on 127.0.0.1:5432 (starting it if needed).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
ensure_postgres
log "PostgreSQL is ready on 127.0.0.1:5432"
