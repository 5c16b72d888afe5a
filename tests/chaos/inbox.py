"""Notifications and alerts under faults: created through the API (the SDK for notifications,
HTTP for alerts) while the faults run, some notifications read by their user through the client
API; afterwards every one the API acknowledged must be there, and the unread counts must match
the read marks."""

import asyncio
import random
from typing import Dict, List, Set

import httpx
from switchboard_sdk import AsyncSwitchboard, SwitchboardError
from switchboard_sdk.security import mint_token

from cluster import API_KEY, SECRET, SLUG

TIMEOUT = 3.0


class Inbox:
    def __init__(self, bases: List[str], users: List[str], groups: Dict[str, List[str]], seed: int):
        self.bases, self.users, self.groups = bases, users, groups  # group -> its members
        self.rng = random.Random(seed ^ 0x1B0C)
        self.http = httpx.AsyncClient(timeout=TIMEOUT)
        self.sdks = [AsyncSwitchboard(b, API_KEY, SLUG, retries=1, timeout=TIMEOUT) for b in bases]
        self.notes: Dict[str, Set[str]] = {u: set() for u in users}   # acknowledged creations
        self.reads: Dict[str, Set[str]] = {u: set() for u in users}   # acknowledged reads
        self.tried_reads: Dict[str, Set[str]] = {u: set() for u in users}
        self.alerts: Dict[str, Set[str]] = {g: set() for g in groups}
        self.uncertain = {"notifications": 0, "alerts": 0}
        self.turn = 0

    def token(self, user: str) -> str:
        return mint_token(SECRET, user, groups=[g for g, members in self.groups.items() if user in members])

    def node(self) -> int:
        self.turn += 1
        return self.turn % len(self.bases)

    async def notify(self) -> None:
        user = self.rng.choice(self.users)
        try:
            created = await self.sdks[self.node()].create_notification(user, "chaos", "a notification", type="chaos")
            self.notes[user].add(created["id"])
        except (httpx.HTTPError, SwitchboardError):
            self.uncertain["notifications"] += 1  # it may have been stored: never retried

    async def alert(self) -> None:
        group = self.rng.choice(sorted(self.groups))
        url = f"{self.bases[self.node()]}/api/v1/apps/{SLUG}/alerts"
        body = {"group": group, "title": "chaos", "message": "an alert", "severity": "info"}
        try:
            response = await self.http.post(url, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
            if response.status_code == 201:
                self.alerts[group].add(response.json()["id"])
                return
        except httpx.HTTPError:
            pass
        self.uncertain["alerts"] += 1

    async def read(self) -> None:
        """Reads one of a user's notifications, retried on each node (reading twice is harmless)."""
        user = self.rng.choice(self.users)
        unread = sorted(self.notes[user] - self.tried_reads[user])
        if not unread:
            return
        note = self.rng.choice(unread)
        self.tried_reads[user].add(note)
        for _ in range(len(self.bases)):
            url = f"{self.bases[self.node()]}/api/v1/apps/{SLUG}/me/notifications/{note}/read"
            try:
                response = await self.http.post(url, headers={"Authorization": f"Bearer {self.token(user)}"})
                if response.status_code == 200:
                    self.reads[user].add(note)
                    return
            except httpx.HTTPError:
                pass

    async def traffic(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.rng.choice([self.notify, self.notify, self.alert, self.read])()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(0.2, 0.8))
            except asyncio.TimeoutError:
                pass

    async def listing(self, base: str, user: str, path: str, key: str, query: str = "") -> List[dict]:
        """Every row of a `me/` list, page by page (bounded)."""
        rows, cursor = [], ""
        for _ in range(100):
            url = f"{base}/api/v1/apps/{SLUG}/me/{path}?limit=100{query}{cursor}"
            answer = (await self.http.get(url, headers={"Authorization": f"Bearer {self.token(user)}"})).json()
            rows += answer[key]
            if not answer.get("next_cursor"):
                return rows
            cursor = f"&cursor={answer['next_cursor']}"
        return rows

    async def audit(self, base: str) -> dict:
        """What is missing, and whether counts match, read through one node's client API."""
        figures = {"notifications_acked": sum(map(len, self.notes.values())),
                   "alerts_acked": sum(map(len, self.alerts.values())), "reads_acked": sum(map(len, self.reads.values())),
                   "uncertain": dict(self.uncertain), "missing": 0, "unexpected": 0, "count_mismatches": 0,
                   "read_mismatches": 0}
        for user in self.users:
            rows = await self.listing(base, user, "notifications", "notifications")
            ids = {r["id"] for r in rows}
            figures["missing"] += len(self.notes[user] - ids)
            figures["unexpected"] += max(0, len(ids - self.notes[user]) - self.uncertain["notifications"])
            unread = sum(1 for r in rows if not r["read"])
            count = (await self.http.get(f"{base}/api/v1/apps/{SLUG}/me/notifications/count",
                                         headers={"Authorization": f"Bearer {self.token(user)}"})).json()["unread"]
            figures["count_mismatches"] += int(count != unread)
            read = {r["id"] for r in rows if r["read"]}
            # Every acknowledged read is read; nothing we never tried to read is.
            figures["read_mismatches"] += len(self.reads[user] - read) + len(read - self.tried_reads[user])
        for group, members in self.groups.items():
            rows = await self.listing(base, members[0], "alerts", "alerts", f"&group={group}")
            ids = {r["id"] for r in rows}
            figures["missing"] += len(self.alerts[group] - ids)
            figures["unexpected"] += max(0, len(ids - self.alerts[group]) - self.uncertain["alerts"])
        return figures

    async def close(self) -> None:
        await self.http.aclose()
        for sdk in self.sdks:
            await sdk.aclose()
