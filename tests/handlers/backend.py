"""An app backend for Switchboard's handler tests (stdlib only).

Started by crates/server/tests/hub/handlers.rs; prints its port, then serves:
  /hook     the message handler: answers by message type (echo, announce, refuse, slow,
            garbage, boom)
  /connect  the connect hook: refuses mallory, gives others a room and data
  /proxy    the subscribe proxy: a user may subscribe to docs:<their id> only
Every request must carry a valid X-Switchboard-Signature for the key in SWITCHBOARD_KEY,
over its X-Switchboard-Timestamp and body, signed within 5 minutes, or it is answered 401
(which the tests would see as handler_failed).
"""

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ["SWITCHBOARD_KEY"].encode()


def hook(message, connection):
    kind, data = message["type"], message.get("data")
    if kind == "echo":
        return {"reply": {"echo": data, "user": connection["user_id"]}}
    if kind == "announce":
        event = {"channels": ["room:lobby"], "type": "announced", "data": data}
        return {"publish": [event], "reply": {"published": 1}}
    if kind == "refuse":
        return {"error": {"code": "not_allowed", "message": "no way"}}
    if kind == "slow":
        time.sleep(3)
        return {"reply": "too late"}
    if kind == "garbage":
        return "not json"
    if kind == "boom":
        return 500
    return {"error": {"message": f"unhandled {kind}"}}


class Backend(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers.get("X-Switchboard-Timestamp", "")
        signed = timestamp.encode() + b"." + body
        expected = "sha256=" + hmac.new(KEY, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Switchboard-Signature", "")):
            return self.answer(401, {"error": "bad signature"})
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return self.answer(401, {"error": "stale call"})
        request = json.loads(body)
        user = request["connection"]["user_id"]
        if self.path == "/hook":
            print(f"hook {request['message']['type']} {user}", flush=True)  # tests wait on this
            result = hook(request["message"], request["connection"])
        elif self.path == "/connect":
            result = {"allow": False, "reason": "mallory is banned"} if user == "mallory" else {
                "channels": [f"room:vip-{user}"], "data": {"plan": "pro"}}
        else:
            result = {"allow": request["channel"] == f"docs:{user}"}
        if isinstance(result, int):
            return self.answer(result, {"error": "failed"})
        self.answer(200, result)

    def answer(self, status, result):
        payload = result.encode() if isinstance(result, str) else json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
print(server.server_address[1], flush=True)
server.serve_forever()
