#!/usr/bin/env bash
# Sourced by .ci/run: makes sure PostgreSQL's binaries are installed (Debian's `postgresql`
# package) and that a server answers on 127.0.0.1:5432 with trust auth, as on the development
# machines. When none runs there (or it wants a password), one is started in a temp directory for this CI run and stopped
# when the run ends. (The tests also start throwaway clusters of their own with these binaries.)
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [[ -z "$(pg_bin)" ]]; then
  echo "ci: installing postgresql from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(pg_bin)
"$PG_BIN/postgres" --version

PG_CI_PORT=${PG_CI_PORT:-5432}
if "$PG_BIN/psql" -w -h 127.0.0.1 -p "$PG_CI_PORT" -U postgres -Atc 'SELECT 1' postgres >/dev/null 2>&1; then
  echo "ci: using the PostgreSQL server on 127.0.0.1:$PG_CI_PORT"
else
  # A server that answers but wants a password (a cluster the package started): use another port.
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_CI_PORT"; then PG_CI_PORT=55432; fi
  export PGURL="postgres://postgres@127.0.0.1:$PG_CI_PORT/postgres"
  PG_CI_DIR=$(mktemp -d /tmp/relayq-ci-pg-XXXXXX)
  as_pg=()
  if [[ $(id -u) == 0 ]]; then
    chown postgres: "$PG_CI_DIR"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_CI_DIR/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_CI_DIR/data" -w -l "$PG_CI_DIR/log" \
    -o "-p $PG_CI_PORT -k $PG_CI_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  stop_ci_pg() { "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_CI_DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PG_CI_DIR"; }
  trap stop_ci_pg EXIT
  echo "ci: started PostgreSQL on 127.0.0.1:$PG_CI_PORT for this run"
fi
