"""The README's `testing.serve` example, run as it is written, against a live Switchboard (the
binary `cargo test` builds, or $SWITCHBOARD_BIN)."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = os.environ.get("SWITCHBOARD_BIN", str(Path(__file__).resolve().parents[3] / "target" / "debug" / "switchboard"))


def example(marker: str) -> str:
    """The README's one fenced Python block that contains `marker`."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"README.md should have one ```python block with {marker!r}, has {len(found)}"
    return found[0]


def test_the_serve_example_runs_verbatim(tmp_path):
    code = example("from switchboard_sdk.testing import serve")
    # A fresh interpreter in an empty directory, with nothing from this test's setup but the binary.
    env = {**os.environ, "SWITCHBOARD_BIN": str(Path(BIN).resolve())}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the README's serve example failed:\n{done.stdout}{done.stderr}"
