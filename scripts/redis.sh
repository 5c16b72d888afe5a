# Sourced by scripts/test: starts a throwaway Redis on a free loopback port, exports
# SWITCHBOARD_TEST_REDIS for it, and stops it when the shell exits (Debian's redis-server;
# or set SWITCHBOARD_TEST_REDIS to use a server of yours).

redis_start() {
  if [[ -n ${SWITCHBOARD_TEST_REDIS:-} ]]; then
    return
  fi
  if ! command -v redis-server >/dev/null; then
    echo "redis-server not found: apt-get install redis-server (or set SWITCHBOARD_TEST_REDIS)" >&2
    return 1
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  REDIS_DIR=$(mktemp -d /tmp/switchboard-redis.XXXXXX)
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export SWITCHBOARD_TEST_REDIS="redis://127.0.0.1:$port/"
  echo "Redis on 127.0.0.1:$port (throwaway, in $REDIS_DIR)" >&2
}

redis_stop() {
  if [[ -n ${REDIS_DIR:-} && -f $REDIS_DIR/redis.pid ]]; then
    kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "${REDIS_DIR:-/nonexistent}"
}
