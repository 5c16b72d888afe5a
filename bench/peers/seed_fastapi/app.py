"""The seeds' own design (seed 000): FastAPI with a hand-written ConnectionManager.

Contract shared with every benchmark peer: connect to /ws?user=ID; POST /publish {user?, event}.
"""
import json
from typing import Dict, List, Optional

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel


class ConnectionManager:
    """Seed 000's manager: a user -> sockets map, awaiting each socket in turn."""

    def __init__(self) -> None:
        self.active_connections: Dict[str, List[WebSocket]] = {}

    async def connect(self, user_id: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.setdefault(user_id, []).append(websocket)

    def disconnect(self, user_id: str, websocket: WebSocket) -> None:
        connections = self.active_connections.get(user_id, [])
        if websocket in connections:
            connections.remove(websocket)
        if not connections:
            self.active_connections.pop(user_id, None)

    async def send_personal_message(self, message: str, user_id: str) -> int:
        sent = 0
        for connection in list(self.active_connections.get(user_id, [])):
            await connection.send_text(message)
            sent += 1
        return sent

    async def broadcast(self, message: str) -> int:
        sent = 0
        for user_id in list(self.active_connections):
            sent += await self.send_personal_message(message, user_id)
        return sent


manager = ConnectionManager()
app = FastAPI()


class Publish(BaseModel):
    user: Optional[str] = None
    event: dict


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket, user: str) -> None:
    await manager.connect(user, websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(user, websocket)


@app.post("/publish")
async def publish(body: Publish) -> dict:
    frame = json.dumps(body.event)
    if body.user is None:
        delivered = await manager.broadcast(frame)
    else:
        delivered = await manager.send_personal_message(frame, body.user)
    return {"delivered": delivered}
