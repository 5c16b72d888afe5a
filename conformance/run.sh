#!/usr/bin/env bash
# Starts Switchboard with the diagnostic echo endpoint (conformance/echo.json) on a free
# loopback port, runs the Autobahn cases 1-10 and 12-13 (permessage-deflate) against it, and
# stops the server.
#
# Usage: conformance/run.sh [SWITCHBOARD_BINARY]   (default: target/release/switchboard)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/switchboard}
# shellcheck source=conformance/serve.sh
source "$ROOT/conformance/serve.sh"
serve_manifest "$BIN" "$ROOT/conformance/echo.json" conformance

"$ROOT/conformance/autobahn.sh" "ws://$ADDR/echo"
