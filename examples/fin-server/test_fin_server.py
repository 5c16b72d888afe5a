"""fin_server end to end: seed 003's front-end paths (frontend.mjs, the real socket.io-client)
against a live Switchboard and the Flask backend, which publishes through the Python SDK."""

import importlib.util
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

os.environ["FIN_NO_APP"] = "1"
# Each example's backend is `app.py`; load this one under a name of its own.
_spec = importlib.util.spec_from_file_location("fin_server_app", Path(__file__).with_name("app.py"))
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
create_app = _module.create_app

from switchboard_sdk import Switchboard, mint_token  # noqa: E402
from switchboard_sdk.testing import serve  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = os.environ.get("SWITCHBOARD_BIN", str(HERE.parents[1] / "target" / "debug" / "switchboard"))
SECRET, KEY = "fin-secret", "sk_fin"


@pytest.fixture(scope="module")
def switchboard():
    with serve(HERE / "switchboard.json", env={"FIN_JWT_SECRET": SECRET, "SWITCHBOARD_API_KEY": KEY}, binary=BIN) as url:
        yield url


@pytest.fixture(scope="module")
def backend(switchboard):
    with Switchboard(switchboard, KEY, "fin") as sb:
        server = make_server("127.0.0.1", 0, create_app(sb), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()


def test_the_seed_front_end_works_unchanged(switchboard, backend):
    if not (HERE / "node_modules" / "socket.io-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
    env = dict(os.environ, SB=switchboard, BACKEND=backend,
               RAVI=mint_token(SECRET, "ravi", groups=["acct-1"]), SARA=mint_token(SECRET, "sara", groups=["acct-1"]))
    out = subprocess.run(["node", "frontend.mjs"], cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["note"] == "New Task"
    assert seen["read"]["ok"] is True and seen["unreadAfterRead"] == 0
    assert seen["alerts"] == ["critical", "critical"]
    for event in ("stream:task_update", "stream:pond_update", "stream:expense_update"):
        assert seen[event] == ["ravi", "ravi"], event
    assert seen["created"] is True
    assert seen["sent"] == {"ok": True, "tempId": "t1"} and seen["received"] == "Feed pond 3?"
    assert (seen["typing"], seen["readBy"], seen["away"], seen["offline"]) == ("sara", "sara", "sara", "sara")
    # What ravi's socket heard, by type: nothing meant for sara alone.
    assert "notification:new" not in seen["raviEvents"]
    assert {"alert:new", "chat:message:sent", "chat:conversation:created", "presence:offline"} <= set(seen["raviEvents"])
