"""Seed 004's app on Switchboard: the manifest keeps its `websockets` section (plus a
`handler_url`), `broadcast_to_app` is the SDK's, and `register_message_handler` becomes one
HTTP route that Switchboard calls, signed, for every client message it does not answer itself.

    SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_API_KEY=sk_mdb uvicorn app:app --port 8000
"""

import os
import uuid

from fastapi import FastAPI, Header, HTTPException, Request

from switchboard_sdk import Switchboard, verify_signature

APP = "mdb-app"


def create_app(sb: Switchboard, api_key: str) -> FastAPI:
    app = FastAPI(title="mdb-app (on Switchboard)")
    items, preferences = {}, {}

    # Server -> clients: seed 004's broadcast_to_app after each change.

    @app.post("/items")
    def create_item(item: dict):
        item_id = uuid.uuid4().hex[:8]
        items[item_id] = item
        sb.broadcast_to_app(APP, {"type": "item_created", "data": {"id": item_id, "item": item}})
        return {"id": item_id}

    @app.delete("/items/{item_id}")
    def delete_item(item_id: str):
        if items.pop(item_id, None) is None:
            raise HTTPException(404, f"no item {item_id}")
        sb.broadcast_to_app(APP, {"type": "item_deleted", "data": {"id": item_id}})
        return {"deleted": item_id}

    @app.post("/tasks/{task_id}/complete")
    def complete(task_id: str, x_user: str = Header()):
        sb.broadcast_to_app(APP, {"type": "notification", "data": {"message": "Task completed", "task": task_id}},
                            user_id=x_user)
        return {"completed": task_id}

    # Clients -> server: the message handler (docs/HANDLERS.md).

    @app.post("/ws-hook")
    async def on_message(request: Request):
        body = await request.body()
        # The signature covers the timestamp too; a call older than 5 minutes is refused.
        signature = request.headers.get("X-Switchboard-Signature")
        if not verify_signature(api_key, body, signature, request.headers.get("X-Switchboard-Timestamp")):
            raise HTTPException(401, "not signed by Switchboard")
        call = await request.json()
        user, message = call["connection"]["user_id"], call["message"]
        kind, data = message["type"], message.get("data") or {}
        if kind == "request_data":
            return {"reply": {"data_type": data.get("data_type"), "data": {"items": len(items)}}}
        if kind == "update_preferences":
            preferences[user] = data.get("preferences", {})
            # Published before the reply: the user's other devices hear it too.
            return {"publish": {"channels": [f"user:{user}"], "type": "preferences_updated",
                                "data": {"user_id": user, "preferences": preferences[user]}},
                    "reply": {"saved": True}}
        if kind == "action" and data.get("action") == "fail":
            return {"error": {"code": "action_failed", "message": "that action cannot be done"}}
        return {"error": {"code": "unknown_action", "message": f"no handler for `{kind}`"}}

    return app


if os.environ.get("EXAMPLE_NO_APP") is None:
    _key = os.environ.get("SWITCHBOARD_API_KEY", "sk_mdb")
    app = create_app(Switchboard(os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080"), _key, APP), _key)
