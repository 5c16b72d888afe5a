# Sourced by scripts/test: starts a throwaway PostgreSQL server on a free loopback port,
# exports SWITCHBOARD_TEST_POSTGRES for it, and stops and deletes it when the shell exits.
# Tests create one database each on it. Uses Debian's server binaries (apt-get install
# postgresql); a server you already run can be used instead by setting
# SWITCHBOARD_TEST_POSTGRES=postgres://USER@HOST:PORT/postgres (USER needs CREATEDB).

postgres_start() {
  if [[ -n ${SWITCHBOARD_TEST_POSTGRES:-} ]]; then
    echo "using PostgreSQL at ${SWITCHBOARD_TEST_POSTGRES%%@*}@..." >&2
    return
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ ! -x $bin/initdb ]]; then
    echo "PostgreSQL server not found: apt-get install postgresql (or set SWITCHBOARD_TEST_POSTGRES)" >&2
    return 1
  fi
  PG_BIN=$bin
  PG_DIR=$(mktemp -d /tmp/switchboard-pg.XXXXXX)
  # initdb refuses to run as root; Debian's package makes the postgres user for this.
  if [[ $EUID -eq 0 ]]; then chown postgres "$PG_DIR"; fi
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U switchboard --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # fsync off: a test server's data may vanish with the machine; our own kill -9 tests kill
  # Switchboard, not PostgreSQL.
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=500" start >/dev/null
  export SWITCHBOARD_TEST_POSTGRES="postgres://switchboard@127.0.0.1:$port/postgres"
  echo "PostgreSQL $(basename "$(dirname "$PG_BIN")") on 127.0.0.1:$port (throwaway, in $PG_DIR)" >&2
}

postgres_stop() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}

as_postgres() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
