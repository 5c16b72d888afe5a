# Sourced by the conformance runners: starts Switchboard on a free loopback port.
#
#   serve_manifest BINARY MANIFEST NODE_ID
#
# Sets PID, ADDR (host:port), WORK (a scratch directory holding its SQLite store) and LOG (its
# log file); stops the server and removes both on exit. Fails with the log if it does not
# come up within 10 s.
serve_manifest() {
  LOG=$(mktemp)
  WORK=$(mktemp -d)
  "$1" serve --manifest "$2" --bind 127.0.0.1:0 --store "sqlite://$WORK/$3.db" --node-id "$3" \
    >/dev/null 2>"$LOG" &
  PID=$!
  trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$LOG" "$WORK"' EXIT
  # The server logs its address once it listens; wait for that line (bounded).
  ADDR=
  for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -n 1)
    [[ -n $ADDR ]] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2
  cat "$LOG" >&2
  exit 1
}
