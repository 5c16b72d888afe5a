#!/usr/bin/env bash
# Autobahn TestSuite (RFC 6455) conformance run against a WebSocket echo endpoint.
#
# Usage: conformance/autobahn.sh WS_URL [REPORT_DIR]
#   WS_URL      echo endpoint (server echoes every text/binary message back),
#               e.g. ws://127.0.0.1:9001/echo - the path is sent as-is.
#   REPORT_DIR  where kosoku writes index.json/index.html and per-case
#               reports (default: <repo>/target/autobahn).
# Env:
#   SWITCHBOARD_VENV  venv holding kosoku (default: <repo>/.venv; created if missing)
#   AUTOBAHN_TIMEOUT  whole-script budget in seconds, install included (default 1500;
#                     a full run takes about 700 s on 2 cores, most of it sections 12-13)
#
# Runner: kosoku 0.1.0 (PyPI), a Rust re-implementation of Autobahn's
# fuzzingclient that drives the original Autobahn case files on Python 3, no
# Docker. Invoked as `kosoku -i '1.*' ... -o REPORT_DIR WS_URL` (fuzzingclient
# is its default mode; one case at a time). We run sections 1-7, 9 and 10,
# i.e. all of "1 through 10" (the suite has no section 8, and kosoku rejects an
# include glob that matches nothing), and 12 and 13, permessage-deflate
# (RFC 7692) with every parameter offer the suite makes. The echo endpoint
# declares `compression`, so 12 and 13 run against the same server.
#
# Verdicts (see autobahn_summary.py): a case passes when its behavior is OK,
# NON-STRICT or INFORMATIONAL and its close behavior is OK or INFORMATIONAL,
# exactly kosoku's own CaseResult.passed. FAILED, ERROR (could not connect /
# crashed) and UNIMPLEMENTED (a compression offer the server declined) fail, as do
# close verdicts FAILED, FAILED BY CLIENT, UNCLEAN and WRONG CODE, and any
# case missing from the report (e.g. the run hit the timeout).
#
# What the server must do beyond echoing: accept messages up to 16 MiB and
# fragmented messages of up to 65536 frames (section 9), close with 1007 on
# invalid UTF-8 (section 6), with 1002 on protocol errors (sections 2-5, 7),
# and answer a close frame that arrives mid-fragmented-message with a normal
# close (7.1.5).
#
# Prints one line per section, then `autobahn: N passed, M failed`; exits
# non-zero if any case failed.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || $1 == -* ]]; then
  echo "usage: $0 WS_URL [REPORT_DIR]" >&2
  exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WS_URL=$1
REPORT_DIR=${2:-$ROOT/target/autobahn}
VENV=${SWITCHBOARD_VENV:-$ROOT/.venv}
BUDGET=${AUTOBAHN_TIMEOUT:-1500}
KOSOKU_VERSION=0.1.0
SECTIONS=(1 2 3 4 5 6 7 9 10 12 13)

# Install kosoku only when the pinned version is not already there, so repeat
# runs need no network.
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" - "$KOSOKU_VERSION" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
sys.exit(version("kosoku") != sys.argv[1])
EOF
then
  timeout "$BUDGET" "$VENV/bin/python" -m pip install -q "kosoku==$KOSOKU_VERSION"
fi

# A stale index.json would let a crashed or killed run report old results.
mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR/index.json"

includes=()
for s in "${SECTIONS[@]}"; do includes+=(-i "$s.*"); done

# Whatever the install left of the budget bounds the run: a server that
# swallows messages makes each section 9 case wait up to 100 s.
remaining=$((BUDGET - SECONDS))
((remaining > 0)) || remaining=1
start=$SECONDS
rc=0
timeout --kill-after=10 "$remaining" \
  "$VENV/bin/kosoku" "${includes[@]}" -o "$REPORT_DIR" "$WS_URL" || rc=$?
if ((rc == 124 || rc == 137)); then
  echo "autobahn: kosoku killed after ${remaining}s; no report" >&2
fi
echo "autobahn: kosoku ran $((SECONDS - start))s; report: $REPORT_DIR/index.html"

# The summary's exit status is the verdict; kosoku's own exit status (1 on any
# failure) only matters if it failed while the summary saw nothing wrong.
summary_rc=0
"$VENV/bin/python" "$ROOT/conformance/autobahn_summary.py" "$REPORT_DIR" "${SECTIONS[@]}" || summary_rc=$?
if ((summary_rc == 0 && rc != 0)); then
  echo "autobahn: kosoku exited $rc although every case passed" >&2
  exit "$rc"
fi
exit "$summary_rc"
