#!/usr/bin/env python3
"""Summarise a kosoku (Autobahn fuzzingclient) report directory.

Usage: autobahn_summary.py REPORT_DIR SECTION...

Reads REPORT_DIR/index.json (written by `kosoku -o REPORT_DIR`), prints one
line per section and a final `autobahn: N passed, M failed` line, and exits 1
if any case failed. Run it with the venv's python: kosoku's case index is used
to count cases that never reached the report (run killed by the timeout,
kosoku crashed) as failed, so a truncated run can never look green.

A case passes when, as in kosoku's own `CaseResult.passed`:
  behavior      is OK, NON-STRICT or INFORMATIONAL  (not FAILED, ERROR, UNIMPLEMENTED)
  behaviorClose is OK or INFORMATIONAL              (not FAILED, FAILED BY CLIENT,
                                                     UNCLEAN, WRONG CODE)
"""

import json
import sys
from pathlib import Path

PASS_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASS_CLOSE = {"OK", "INFORMATIONAL"}
NAMES = {"1": "Framing", "2": "Pings/Pongs", "3": "Reserved Bits", "4": "Opcodes",
         "5": "Fragmentation", "6": "UTF-8 Handling", "7": "Close Handling",
         "9": "Limits/Performance", "10": "Misc", "12": "permessage-deflate",
         "13": "permessage-deflate parameters"}
MAX_LISTED = 8  # keep each section line readable when a whole section fails


def sort_key(case_id):
    return [int(p) for p in case_id.split(".")]


def main():
    report_dir, sections = Path(sys.argv[1]), sys.argv[2:]

    # Results: {case_id: entry}. index.json is {agent: {case_id: entry}}; one
    # agent per run, but merge in case the server changed its Server header.
    results = {}
    index = report_dir / "index.json"
    if index.is_file():
        for cases in json.loads(index.read_text()).values():
            results.update(cases)
    else:
        print(f"autobahn: no report at {index}", file=sys.stderr)

    # Every case kosoku would have run for these sections, reported or not.
    try:
        from kosoku.cases import CASES
        expected = {c for c in CASES if c.split(".")[0] in sections}
    except ImportError:
        expected = set()
    expected |= {c for c in results if c.split(".")[0] in sections}

    total_pass = total_fail = 0
    for section in sections:
        ids = sorted((c for c in expected if c.split(".")[0] == section), key=sort_key)
        failed = []
        for case_id in ids:
            entry = results.get(case_id)
            if entry is None:
                failed.append(f"{case_id}(MISSING)")
            elif entry["behavior"] not in PASS_BEHAVIOR or entry["behaviorClose"] not in PASS_CLOSE:
                failed.append(f"{case_id}({entry['behavior']}/{entry['behaviorClose']}"
                              f"/close={entry.get('remoteCloseCode')})")
        passed = len(ids) - len(failed)
        total_pass += passed
        total_fail += len(failed)
        line = f"  section {section} {NAMES.get(section, '')}: {passed}/{len(ids)} ok"
        if failed:
            more = f" +{len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
            line += " - failed " + " ".join(failed[:MAX_LISTED]) + more
        print(line)

    if not expected:  # nothing ran and nothing known: never report success
        total_fail = max(total_fail, 1)
    print(f"autobahn: {total_pass} passed, {total_fail} failed")
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
