"""The SDK against a live Switchboard: the binary `cargo test` builds (or $SWITCHBOARD_BIN)."""

import asyncio
import json
import os
import shutil
import tempfile
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from websockets.sync.client import connect

from switchboard_sdk import AsyncSwitchboard, Switchboard, SwitchboardError, mint_token, verify_signature
from switchboard_sdk.testing import free_port, serve

SECRET, KEY = "py-sdk-secret", "sk_py_sdk"
BIN = os.environ.get("SWITCHBOARD_BIN", str(Path(__file__).resolve().parents[3] / "target" / "debug" / "switchboard"))


class Backend(BaseHTTPRequestHandler):
    """An app backend's handler: verifies the signature with the SDK and says what it found."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signature, timestamp = self.headers.get("X-Switchboard-Signature"), self.headers.get("X-Switchboard-Timestamp")
        verified = verify_signature(KEY, body, signature, timestamp)
        tampered = verify_signature(KEY, body + b" ", signature, timestamp)
        answer = json.dumps({"reply": {"verified": verified, "tampered": tampered}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Server:
    """`switchboard serve` for one app whose handler is `handler_url`."""

    def __init__(self, handler_url: str):
        self.dir = tempfile.mkdtemp(prefix="switchboard-py-")
        Path(self.dir, "secret.txt").write_text(SECRET)
        Path(self.dir, "key.txt").write_text(KEY)
        manifest = {
            "slug": "py",
            "auth_policy": {"jwt": {"secret_file": "secret.txt"}},
            "api_key_file": "key.txt",
            "websockets": {"realtime": {"path": "/ws", "handler_url": handler_url}},
            "channels": {"room": {"subscribe": "authenticated"}},
            "features": {"presence": False},
        }
        self.manifest = Path(self.dir, "py.json")
        self.manifest.write_text(json.dumps(manifest))
        self.url = ""

    def serve(self, port=None):
        return serve(self.manifest, binary=BIN, port=port)

    def socket(self, user, groups=()):
        ws = connect(f"{self.url.replace('http', 'ws', 1)}/ws?token={mint_token(SECRET, user, groups=groups)}")
        assert frame(ws)["type"] == "connected"
        return ws


def frame(ws):
    return json.loads(ws.recv(timeout=10))


@pytest.fixture(scope="module")
def server():
    backend = HTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    server = Server(f"http://127.0.0.1:{backend.server_port}/hook")
    with server.serve() as url:
        server.url = url
        yield server
    backend.shutdown()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def sb(server):
    with Switchboard(server.url, KEY, "py") as client:
        yield client


def test_the_seed_apps_calls_reach_a_live_connection(server, sb):
    ws = server.socket("alice", groups=["fam"])
    sb.emit_to_user("alice", "family_invitation", {"family_id": "f1"})
    sb.emit_to_account("fam", "sbd_account_frozen", {"by": "admin"})
    sb.broadcast("shop_item_added", {"item": "hat"})
    sb.broadcast_to_app("py", {"type": "notification", "data": {"message": "Hello"}}, user_id="alice")
    sb.broadcast_to_app("py", {"type": "subscribed", "channel": "c1"})
    sb.send_personal_message("plain text", "alice")
    answers = sb.broadcast_to_users({"balance": 5}, ["alice", "bob"], event="sbd_tokens_received")
    assert len(answers) == 1 and set(answers[0]["positions"]) == {"user:alice", "user:bob"}
    got = [(f["type"], f["channel"], f["data"]) for f in (frame(ws) for _ in range(7))]
    assert got == [
        ("family_invitation", "user:alice", {"family_id": "f1"}),
        ("sbd_account_frozen", "group:fam", {"by": "admin"}),
        ("shop_item_added", "broadcast", {"item": "hat"}),
        ("notification", "user:alice", {"message": "Hello"}),
        ("subscribed", "broadcast", {"channel": "c1"}),
        ("message", "user:alice", "plain text"),
        ("sbd_tokens_received", "user:alice", {"balance": 5}),
    ]
    ws.close()


def test_inbox_members_connections_and_history(server, sb):
    ws = server.socket("carol", groups=["ops"])
    created = sb.create_notification("carol", "Welcome", "Hello Carol", type="info")
    assert frame(ws)["type"] == "notification:new" and frame(ws)["data"] == {"unread": 1}
    alert = sb.create_alert("ops", "Disk", "90% full", "warning")
    assert frame(ws)["data"]["alert_id"] == alert["alert_id"]
    frame(ws)  # alert:count
    assert sb.add_member("room:war", "carol")["added"] is True
    assert sb.members("room:war")["members"] == ["carol"]
    sb.emit_to_room("war", "incident", {"id": 7})
    assert frame(ws)["channel"] == "room:war"
    assert [c["user_id"] for c in sb.connections("carol")["connections"]] == ["carol"]
    # One device, as the app-engine manager's send_to_connection did.
    [device] = sb.get_connections_by_user("carol")
    sb.send_to_connection(device["connection_id"], {"type": "personal_message", "data": "Hello!"})
    direct = frame(ws)
    assert (direct["type"], direct["data"]) == ("personal_message", "Hello!")
    with pytest.raises(SwitchboardError) as gone:
        sb.send_to_connection("nobody-0000", {"type": "personal_message"})
    assert gone.value.status == 404
    assert sb.connection_counts()["total"] >= 1
    page = sb.history("user:carol")
    assert [e["type"] for e in page["events"]] == ["notification:new", "notification:count"]
    assert created["id"] == page["events"][0]["data"]["id"]
    assert sb.remove_member("room:war", "carol")["removed"] is True
    assert sb.disconnect_user("carol")["disconnected"] == 1
    with pytest.raises(Exception):
        while True:
            frame(ws)  # until the 4403 close


def test_refusals_raise_with_the_servers_code(sb):
    with pytest.raises(SwitchboardError) as refused:
        sb.publish(["nowhere:1"], "x")
    assert (refused.value.status, refused.value.code) == (400, "bad_request")
    assert "nowhere" in refused.value.message


def test_a_repeated_idempotency_key_publishes_once(sb):
    first = sb.publish(["user:dan"], "transfer", {"amount": 1}, idempotency_key="transfer-1")
    again = sb.publish(["user:dan"], "transfer", {"amount": 1}, idempotency_key="transfer-1")
    assert again == first
    assert len(sb.history("user:dan")["events"]) == 1


def test_the_async_client_has_the_same_methods(server):
    async def run():
        async with AsyncSwitchboard(server.url, KEY, "py") as sb:
            ws = await asyncio.to_thread(server.socket, "erin")
            await sb.emit_to_user("erin", "hello", {"n": 1})
            answers = await sb.broadcast_to_users("hi", ["erin"])
            received = [await asyncio.to_thread(frame, ws) for _ in range(2)]
            assert [(f["type"], f["data"]) for f in received] == [("hello", {"n": 1}), ("message", "hi")]
            assert answers[0]["positions"]["user:erin"]["seq"] == 2
            [device] = await sb.get_connections_by_user("erin")
            await sb.send_to_connection(device["connection_id"], {"type": "just_you", "data": 3})
            direct = await asyncio.to_thread(frame, ws)
            assert (direct["type"], direct["data"]) == ("just_you", 3)
            ws.close()

    asyncio.run(run())


def test_a_handler_call_verifies_with_the_sdk(server):
    ws = server.socket("fay")
    ws.send(json.dumps({"type": "task:claim", "ref": 1, "data": {"task_id": 42}}))
    reply = frame(ws)
    assert reply["type"] == "reply" and reply["data"] == {"verified": True, "tampered": False}
    ws.close()


def test_calls_retry_until_a_late_server_answers_and_publish_once():
    port, late = free_port(), Server("http://127.0.0.1:9/unused")
    with ExitStack() as stack:
        threading.Timer(0.5, lambda: stack.enter_context(late.serve(port))).start()
        with Switchboard(f"http://127.0.0.1:{port}", KEY, "py", retries=8, backoff=0.1) as sb:
            sb.emit_to_user("gus", "hello")  # refused connections until the server is up
            assert len(sb.history("user:gus")["events"]) == 1
    shutil.rmtree(late.dir, ignore_errors=True)
