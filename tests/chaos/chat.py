"""Chat under faults: one user sends messages to another in a direct conversation through the
socket (`chat:send`; its `reply` is the acknowledgement), to each node in turn, moving to the next
node whenever its socket breaks or a reply does not come. Afterwards every acknowledged message
is in the conversation once, and the receiver's unread count equals the messages it holds."""

import asyncio
import json
import random
from typing import Dict, List, Optional

import httpx
import websockets
from switchboard_sdk.security import mint_token

from cluster import SECRET, SLUG

TIMEOUT = 3.0
SENDER, RECEIVER = "chat-sender", "chat-receiver"


class ChatTraffic:
    def __init__(self, bases: List[str], seed: int):
        self.bases = bases
        self.rng = random.Random(seed ^ 0xC4A7)
        self.socket = None
        self.node = 0
        self.ref = 0
        self.conversation: Optional[str] = None
        self.acked: Dict[str, str] = {}  # tempId -> messageId
        self.uncertain = 0  # sends without an answer: stored or not, never retried

    def url(self, node: int, user: str) -> str:
        base = self.bases[node].replace("http", "ws", 1)
        return f"{base}/ws?token={mint_token(SECRET, user)}"

    async def request(self, kind: str, data: dict) -> Optional[dict]:
        """Sends `kind` on the current node's socket (opening one, moving on when it fails);
        the reply's data, or None (the socket is dropped, the next request uses the next node)."""
        try:
            if self.socket is None:
                self.node = (self.node + 1) % len(self.bases)
                self.socket = await asyncio.wait_for(websockets.connect(self.url(self.node, SENDER)), TIMEOUT)
            self.ref += 1
            await self.socket.send(json.dumps({"type": kind, "ref": self.ref, "data": data}))
            return await asyncio.wait_for(self.reply(self.ref), TIMEOUT)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
            await self.drop()
            return None

    async def reply(self, ref: int) -> Optional[dict]:
        while True:
            frame = json.loads(await self.socket.recv())
            if frame.get("ref") == ref:
                return frame["data"] if frame.get("type") == "reply" else None

    async def drop(self) -> None:
        if self.socket is not None:
            socket, self.socket = self.socket, None
            try:
                await asyncio.wait_for(socket.close(), 1)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass

    async def start(self) -> None:
        """Opens the conversation (before the faults; bounded)."""
        for _ in range(10):
            made = await self.request("chat:conversation:create", {"type": "direct", "participants": [RECEIVER]})
            if made:
                self.conversation = (made.get("conversation") or made)["conversationId"]
                return
        raise RuntimeError("chat: could not create the conversation")

    async def traffic(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            temp = f"t{n}"
            sent = await self.request("chat:send", {"conversationId": self.conversation, "content": f"m{n}", "tempId": temp})
            if sent and sent.get("messageId"):
                self.acked[temp] = sent["messageId"]
            else:
                self.uncertain += 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(0.2, 0.8))
            except asyncio.TimeoutError:
                pass
        await self.drop()

    async def audit(self, base: str) -> dict:
        """Every acknowledged message present once; the receiver's unread count matches."""
        async with httpx.AsyncClient(timeout=10) as http:
            messages, before = [], ""
            for _ in range(1000):  # bounded: 100 per page
                url = f"{base}/api/v1/apps/{SLUG}/me/conversations/{self.conversation}/messages?limit=100{before}"
                page = (await http.get(url, headers={"Authorization": f"Bearer {mint_token(SECRET, SENDER)}"})).json()
                messages += page["messages"]
                if not page.get("next_before"):
                    break
                before = f"&before={page['next_before']}"
            unread = (await http.get(f"{base}/api/v1/apps/{SLUG}/me/chat/unread",
                                     headers={"Authorization": f"Bearer {mint_token(SECRET, RECEIVER)}"})).json()
        ids = [m["messageId"] for m in messages]
        temps = [m.get("tempId") for m in messages]
        return {"chat_acked": len(self.acked), "chat_uncertain": self.uncertain, "chat_stored": len(ids),
                "chat_missing": len(set(self.acked.values()) - set(ids)),
                "chat_duplicated": len(temps) - len(set(temps)),
                "chat_unread_mismatch": int(unread["conversations"].get(self.conversation, 0) != len(ids))}
