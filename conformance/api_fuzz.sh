#!/usr/bin/env bash
# Starts Switchboard with conformance/api.json on a free loopback port and runs Schemathesis
# against its OpenAPI document: no 5xx, and every response as the document says.
#
# Usage: conformance/api_fuzz.sh [SWITCHBOARD_BINARY] [SCHEMATHESIS]
#   defaults: target/debug/switchboard, .venv/bin/schemathesis
#   API_FUZZ_SECONDS bounds the fuzzing phase (default 120).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/debug/switchboard}
ST=${2:-$ROOT/.venv/bin/schemathesis}
LOG=$(mktemp)
WORK=$(mktemp -d)
export FUZZ_JWT_SECRET=api-fuzz-secret-0123456789abcdef FUZZ_API_KEY=sk_api_fuzz_0123456789

"$BIN" serve --manifest "$ROOT/conformance/api.json" --bind 127.0.0.1:0 \
  --store "sqlite://$WORK/api.db" --node-id api-fuzz >/dev/null 2>"$LOG" &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$LOG" "$WORK"' EXIT

ADDR=
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -n 1)
  [[ -n $ADDR ]] && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[[ -n $ADDR ]] || { echo "server did not start" >&2; cat "$LOG" >&2; exit 1; }

FUZZ_USER_TOKEN=$("$BIN" token --manifest "$ROOT/conformance/api.json" --app fuzz --user fuzz-user --ttl 2h \
  --store "sqlite://$WORK/api.db")
export FUZZ_USER_TOKEN
cd "$WORK"  # Schemathesis keeps its state in the working directory
status=0
"$ST" --config-file "$ROOT/conformance/schemathesis.toml" run "http://$ADDR/api/v1/openapi.json" \
  --max-time "${API_FUZZ_SECONDS:-120}" --workers 2 --no-color || status=$?
if grep -E '"level":"ERROR"| ERROR ' "$LOG" >&2; then
  echo "the server logged errors during the run (above)" >&2
  exit 1
fi
exit $status
