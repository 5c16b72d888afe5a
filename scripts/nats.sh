# Sourced by scripts/test: starts a throwaway NATS server on a free loopback port, exports
# SWITCHBOARD_TEST_NATS for it, and stops it when the shell exits (Debian's nats-server; or
# set SWITCHBOARD_TEST_NATS to use a server of yours).

nats_start() {
  if [[ -n ${SWITCHBOARD_TEST_NATS:-} ]]; then
    return
  fi
  if ! command -v nats-server >/dev/null; then
    echo "nats-server not found: apt-get install nats-server (or set SWITCHBOARD_TEST_NATS)" >&2
    return 1
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  NATS_DIR=$(mktemp -d /tmp/switchboard-nats.XXXXXX)
  nats-server -a 127.0.0.1 -p "$port" -P "$NATS_DIR/nats.pid" -l "$NATS_DIR/nats.log" &
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  export SWITCHBOARD_TEST_NATS="nats://127.0.0.1:$port"
  echo "NATS on 127.0.0.1:$port (throwaway, in $NATS_DIR)" >&2
}

nats_stop() {
  if [[ -n ${NATS_DIR:-} && -f $NATS_DIR/nats.pid ]]; then
    kill "$(cat "$NATS_DIR/nats.pid")" 2>/dev/null || true
  fi
  rm -rf "${NATS_DIR:-/nonexistent}"
}
