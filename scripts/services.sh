#!/usr/bin/env bash
# Make sure the local services the tests need are up, and create their databases.
# Postgres: 127.0.0.1:5432, trust auth, user postgres (as on this machine kind).
# With WITH_WRK=1 it also installs wrk for the serving benchmark when it is missing.
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

# promtool (Debian's prometheus package) runs the alert-rule unit tests and checks prometheus.yml;
# prometheus-pushgateway receives the pipelines' verdict metrics in the hook tests.
for tool in promtool:prometheus prometheus-pushgateway:prometheus-pushgateway; do
    if [ -z "${SKIP_PROMETHEUS:-}" ] && ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "services: installing ${tool#*:} (${tool%%:*})"
        (apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq "${tool#*:}" >/dev/null)) \
            || echo "services: could not install ${tool#*:}"
    fi
done

# wrk drives bench/serving.py (make bench sets WITH_WRK=1). Without it the bench uses its Python load
# generator, so a machine without apt, or offline, only prints a note.
if [ -n "${WITH_WRK:-}" ] && ! command -v wrk >/dev/null 2>&1; then
    echo "services: installing wrk (load generator for bench/serving.py)"
    if command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)) \
            || echo "services: could not install wrk; bench/serving.py falls back to its Python load generator"
    else
        echo "services: no apt-get; bench/serving.py falls back to its Python load generator"
    fi
fi
