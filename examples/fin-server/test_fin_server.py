"""fin_server end to end: seed 003's front-end paths (frontend.mjs, the real socket.io-client)
against a live Switchboard and the Flask backend, which publishes through the Python SDK."""

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from switchboard_sdk import Switchboard, mint_token
from switchboard_sdk.testing import serve

HERE = Path(__file__).resolve().parent
SECRET, KEY = "fin-secret", "sk_fin"


@pytest.fixture(scope="module")
def switchboard(switchboard_bin):
    env = {"FIN_JWT_SECRET": SECRET, "SWITCHBOARD_API_KEY": KEY}
    with serve(HERE / "switchboard.json", env=env, binary=switchboard_bin) as url:
        yield url


@pytest.fixture(scope="module")
def flask_backend(switchboard, backend):
    with Switchboard(switchboard, KEY, "fin") as sb:
        server = make_server("127.0.0.1", 0, backend.create_app(sb), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()


def test_the_seed_front_end_works_unchanged(switchboard, flask_backend):
    if not (HERE / "node_modules" / "socket.io-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
    env = dict(os.environ, SB=switchboard, BACKEND=flask_backend,
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
