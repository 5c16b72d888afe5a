"""mdb-app end to end: seed 004's manifest on a live Switchboard, the FastAPI backend as its
message handler (served by uvicorn), a signed-in client on /ws and an anonymous one on /events."""

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect

from switchboard_sdk import Switchboard, mint_token
from switchboard_sdk.testing import free_port, serve

HERE = Path(__file__).resolve().parent
SECRET, KEY = "mdb-secret", "sk_mdb"


@pytest.fixture(scope="module")
def stack(switchboard_bin, backend):
    """Switchboard with the example manifest (its handler_url pointed at this test's backend), and the backend."""
    hook_port, workdir = free_port(), tempfile.mkdtemp(prefix="mdb-")
    manifest = json.loads((HERE / "manifest.json").read_text())
    manifest["websockets"]["realtime"]["handler_url"] = f"http://127.0.0.1:{hook_port}/ws-hook"
    Path(workdir, "manifest.json").write_text(json.dumps(manifest))
    env = {"MDB_APP_JWT_SECRET": SECRET, "SWITCHBOARD_API_KEY": KEY}
    with serve(Path(workdir, "manifest.json"), env=env, binary=switchboard_bin) as url:
        sb = Switchboard(url, KEY, "mdb-app")
        hook = uvicorn.Server(uvicorn.Config(backend.create_app(sb, KEY), host="127.0.0.1", port=hook_port, log_level="warning"))
        threading.Thread(target=hook.run, daemon=True).start()
        deadline = time.time() + 20
        while not hook.started:
            assert time.time() < deadline, "the backend did not start"
            time.sleep(0.02)
        yield int(url.rsplit(":", 1)[1]), hook_port
        hook.should_exit = True
    shutil.rmtree(workdir, ignore_errors=True)


def frames(ws):
    while True:
        yield json.loads(ws.recv(timeout=10))


def test_broadcasts_user_messages_and_the_handler(stack):
    sb_port, hook_port = stack
    alice = connect(f"ws://127.0.0.1:{sb_port}/ws?token={mint_token(SECRET, 'alice')}")
    public = connect(f"ws://127.0.0.1:{sb_port}/events")
    a, p = frames(alice), frames(public)
    assert next(a)["data"]["user_id"] == "alice"
    assert next(p)["data"]["user_id"] is None  # anonymous, on the public endpoint

    backend = httpx.Client(base_url=f"http://127.0.0.1:{hook_port}")
    item = backend.post("/items", json={"name": "hat"}).json()["id"]
    for stream in (a, p):
        event = next(stream)
        assert (event["type"], event["data"]["id"], event["app_slug"]) == ("item_created", item, "mdb-app")
    backend.post("/tasks/7/complete", headers={"X-User": "alice"})
    assert next(a)["data"] == {"message": "Task completed", "task": "7"}
    backend.delete(f"/items/{item}")
    for stream in (a, p):  # the public stream's next event is this one: the notification was alice's alone
        assert next(stream)["type"] == "item_deleted"

    # Client messages go to the handler, signed; its reply, publish and error come back.
    alice.send(json.dumps({"type": "request_data", "ref": 1, "data": {"data_type": "stats"}}))
    assert next(a) == {"type": "reply", "ref": 1, "data": {"data_type": "stats", "data": {"items": 0}}}
    alice.send(json.dumps({"type": "update_preferences", "ref": 2, "data": {"preferences": {"theme": "dark"}}}))
    published, reply = next(a), next(a)
    assert (published["type"], published["data"]["preferences"]) == ("preferences_updated", {"theme": "dark"})
    assert reply == {"type": "reply", "ref": 2, "data": {"saved": True}}
    alice.send(json.dumps({"type": "action", "ref": 3, "data": {"action": "fail"}}))
    error = next(a)
    assert (error["type"], error["ref"], error["data"]["code"]) == ("error", 3, "action_failed")
    # The public endpoint has no handler: its clients cannot send the backend anything.
    public.send(json.dumps({"type": "request_data", "ref": 4, "data": {}}))
    assert next(p)["data"]["code"] == "unknown_type"
