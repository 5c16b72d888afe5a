#!/usr/bin/env bash
# Starts Switchboard with the diagnostic echo endpoint (conformance/echo.json) on a free
# loopback port, runs the Autobahn cases 1-10 against it, and stops the server.
#
# Usage: conformance/run.sh [SWITCHBOARD_BINARY]   (default: target/debug/switchboard)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/debug/switchboard}
LOG=$(mktemp)
WORK=$(mktemp -d)

"$BIN" serve --manifest "$ROOT/conformance/echo.json" --bind 127.0.0.1:0 \
  --store "sqlite://$WORK/conformance.db" --node-id conformance >/dev/null 2>"$LOG" &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$LOG" "$WORK"' EXIT

# The server logs its address once it listens; wait for that line (bounded).
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -n 1)
  [[ -n $ADDR ]] && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[[ -n $ADDR ]] || { echo "server did not start" >&2; cat "$LOG" >&2; exit 1; }

"$ROOT/conformance/autobahn.sh" "ws://$ADDR/echo"
