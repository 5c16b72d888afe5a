"""The Flask/Socket.IO app's front-end paths with python-socketio, against a live Switchboard.

Usage: URL=... TOKEN=... KEY=... USER=... python frontend.py polling|websocket
Prints one JSON line with what it saw; crates/server/tests/hub/socketio_clients.rs checks it.
"""

import json
import os
import sys
import threading
import urllib.request

import socketio

url, token, key, user = (os.environ[k] for k in ("URL", "TOKEN", "KEY", "USER"))
transport = sys.argv[1]
sio = socketio.Client(reconnection=False)
arrived = threading.Event()
seen = {}


# python-socketio's natural handler shape: one argument, the event's data. A server that
# appended an extra argument (a recovery offset) would make python-socketio raise TypeError
# in its own thread and this handler would never run.
@sio.on("notification:new")
def on_new(data):
    seen["notification"] = data
    arrived.set()


sio.on("notification:count", lambda data: seen.setdefault("counts", []).append(data))


sio.connect(url, auth={"token": token}, transports=[transport] if transport == "websocket" else ["polling"],
            wait_timeout=5)
request = urllib.request.Request(
    f"{url}/api/v1/apps/app1/notifications",
    data=json.dumps({"user": user, "title": "From Python", "message": "hello"}).encode(),
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
)
urllib.request.urlopen(request, timeout=5).read()
arrived.wait(5)
notification = seen.get("notification", {})
read = sio.call("notification:read", {"notification_id": notification.get("notification_id")}, timeout=5)
unknown = sio.call("no:such:type", {}, timeout=5)
print(json.dumps({"title": notification.get("title"), "read": read, "unknown": unknown, "transport": sio.transport(),
                  "counts": seen.get("counts", [])}))
sio.disconnect()
