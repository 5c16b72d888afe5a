#!/usr/bin/env bash
# Starts Switchboard with conformance/api.json on a free loopback port and runs Schemathesis
# against its OpenAPI document: no 5xx, and every response as the document says.
#
# Usage: conformance/api_fuzz.sh [SWITCHBOARD_BINARY] [SCHEMATHESIS]
#   defaults: target/release/switchboard, .venv/bin/schemathesis
#   API_FUZZ_SECONDS bounds the fuzzing phase (default 120).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/switchboard}
ST=${2:-$ROOT/.venv/bin/schemathesis}
export FUZZ_JWT_SECRET=api-fuzz-secret-0123456789abcdef FUZZ_API_KEY=sk_api_fuzz_0123456789
# shellcheck source=conformance/serve.sh
source "$ROOT/conformance/serve.sh"
serve_manifest "$BIN" "$ROOT/conformance/api.json" api-fuzz

FUZZ_USER_TOKEN=$("$BIN" token --manifest "$ROOT/conformance/api.json" --app fuzz --user fuzz-user --ttl 2h \
  --store "sqlite://$WORK/api-fuzz.db")
export FUZZ_USER_TOKEN
cd "$WORK"  # Schemathesis keeps its state in the working directory
status=0
"$ST" --config-file "$ROOT/conformance/schemathesis.toml" run "http://$ADDR/api/v1/openapi.json" \
  --max-time "${API_FUZZ_SECONDS:-120}" --workers 1 --no-color || status=$?
if grep -E '"level":"ERROR"| ERROR ' "$LOG" >&2; then
  echo "the server logged errors during the run (above)" >&2
  exit 1
fi
exit $status
