"""fin_server's realtime features (seed 003) on Switchboard: a Flask backend with no Socket.IO
server of its own. Notifications and alerts are stored and pushed by Switchboard's inbox; task,
pond and expense changes go to the account as `stream:*` events; chat and presence need no
backend code at all (the front end talks to Switchboard's built-in chat over socket.io-client).

    SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_API_KEY=sk_fin flask --app app run --port 5000

The caller is named by the `X-User` header (the real app's session).
"""

import os
from datetime import datetime, timezone

from flask import Flask, jsonify, request

from switchboard_sdk import Switchboard


def create_app(sb: Switchboard) -> Flask:
    app = Flask(__name__)

    @app.post("/notifications")
    def notify():
        """Seed 003's create_and_emit: stored, then notification:new and notification:count."""
        body = request.get_json()
        return jsonify(sb.create_notification(body["user"], body["title"], body["message"], type=body.get("type")))

    @app.post("/accounts/<account>/alerts")
    def alert(account):
        body = request.get_json()
        return jsonify(sb.create_alert(account, body["title"], body["message"], body.get("severity", "warning"),
                                       type=body.get("type")))

    def stream(account, event, data):
        """EventEmitter.emit_to_account(account_key, 'stream:...', ...) from the seed."""
        sb.emit_to_account(account, event, {**data, "updated_by": request.headers.get("X-User"),
                                            "timestamp": datetime.now(timezone.utc).isoformat()})
        return jsonify({"sent": event})

    @app.put("/accounts/<account>/tasks/<task_id>/status")
    def task_status(account, task_id):
        return stream(account, "stream:task_update", {"task_id": task_id, "status": request.get_json()["status"]})

    @app.put("/accounts/<account>/ponds/<pond_id>")
    def pond(account, pond_id):
        body = request.get_json()
        return stream(account, "stream:pond_update", {"pond_id": pond_id, "field": body["field"], "value": body["value"]})

    @app.put("/accounts/<account>/expenses/<expense_id>/status")
    def expense(account, expense_id):
        return stream(account, "stream:expense_update",
                      {"expense_id": expense_id, "status": request.get_json()["status"]})

    return app


if os.environ.get("EXAMPLE_NO_APP") is None:
    app = create_app(Switchboard(os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080"),
                                 os.environ.get("SWITCHBOARD_API_KEY", "sk_fin"), os.environ.get("SWITCHBOARD_APP", "fin")))
