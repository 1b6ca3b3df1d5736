#!/usr/bin/env bash
# Make sure the local services the tests need are up, and create their databases.
# Postgres: 127.0.0.1:5432, trust auth, user postgres (as on this machine kind).
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGUSER=${PGUSER:-postgres}
export PGHOST PGUSER

if ! pg_isready -q -h "$PGHOST"; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" && break; sleep 1; done
fi
pg_isready -h "$PGHOST"

for db in mlops_test airflow_test mlops_demo; do
    if ! psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" postgres | grep -q 1; then
        createdb "$db"
        echo "services: created database $db"
    fi
done

# The browser tests (tests/browser) drive Debian's chromium through Playwright; never `playwright install`.
[ -x /usr/bin/chromium ] || (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) || echo "services: could not install chromium"

if [ -z "${SKIP_COMPOSE:-}" ] && ! command -v docker-compose >/dev/null 2>&1; then
    echo "services: installing docker-compose (validates docker-compose.yaml; no engine needed)"
    (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null) || echo "services: could not install docker-compose"
fi
