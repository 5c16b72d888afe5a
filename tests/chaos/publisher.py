"""The publisher: the app backend of the chaos lane. It publishes through the HTTP API (single
publishes and batches, with httpx) and through the Python SDK (`AsyncSwitchboard`), to every
node in turn, and keeps the list of what the API acknowledged (channel, seq, epoch, payload id)
for the auditor. Every payload carries a unique `uid`, its channel and the publisher's counter.

A failed publish is retried on the next node with the same idempotency key, so a retry can
never publish twice; one that fails everywhere is recorded as unacknowledged (it may or may
not have been stored, and the auditor accepts either, but never twice). Bursts go in batches
of 100 without keys (the one-commit path) and are not retried.
"""

import asyncio
import itertools
import json
import random
import time
from typing import Dict, List, Optional

import httpx
from switchboard_sdk import AsyncSwitchboard, SwitchboardError

from cluster import API_KEY, HOT, SLUG, WARM_GROUPS

ATTEMPTS = 6
TIMEOUT = 3.0


class Publisher:
    def __init__(self, bases: List[str], users: List[str], seed: int, log_path: str):
        self.bases = bases
        self.users = users
        self.rng = random.Random(seed ^ 0x5EED)
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=TIMEOUT)
        self.sdks = [AsyncSwitchboard(b, API_KEY, SLUG, retries=1, timeout=TIMEOUT) for b in bases]
        self.acked: Dict[str, dict] = {}    # uid -> {ch, seq, ep, id}
        self.unacked: Dict[str, dict] = {}  # uid -> {ch, error}
        self.counters: Dict[str, int] = {}
        self.next_uid = itertools.count(1)
        self.next_node = itertools.count()
        self.by_mechanism: Dict[str, int] = {}
        self.positionless: List[dict] = []
        self.log = open(log_path, "a")

    def payload(self, channel: str, label: Optional[str] = None) -> dict:
        n = self.counters[channel] = self.counters.get(channel, 0) + 1
        uid = label or f"p{next(self.next_uid)}"
        return {"uid": uid, "ch": channel, "n": n, "pad": "x" * self.rng.randrange(0, 120)}

    def record(self, data: dict, result: Optional[dict], via: str, error: str = "") -> None:
        channel, uid = data["ch"], data["uid"]
        if result is not None and channel not in result.get("positions", {}):
            # Acknowledged without the position a channel with history must have: the
            # auditor reports it, and the event counts as unacknowledged.
            self.positionless.append({"uid": uid, "via": via, "answer": result})
            result, error = None, "acknowledged without a position"
        if result is not None:
            position = result["positions"][channel]
            entry = {"ch": channel, "seq": position["seq"], "ep": position["epoch"], "id": result["id"]}
            self.acked[uid] = entry
            self.by_mechanism[via] = self.by_mechanism.get(via, 0) + 1
        else:
            entry = {"ch": channel, "error": error}
            self.unacked[uid] = entry
        self.log.write(json.dumps({"uid": uid, "via": via, "t": round(time.time(), 3), **entry}) + "\n")

    def failed_attempt(self, uid: str, node: int, error: str) -> None:
        """Each failed try, with the node and the error: what a duplicate or loss is traced by."""
        self.log.write(json.dumps({"uid": uid, "attempt_failed": f"n{node}", "t": round(time.time(), 3),
                                   "error": error}) + "\n")

    def nodes(self, avoid: Optional[int] = None) -> List[int]:
        """Every node once, starting from the next in round-robin order."""
        start = next(self.next_node)
        order = [(start + i) % len(self.bases) for i in range(len(self.bases))]
        return [i for i in order if i != avoid] or order

    async def post(self, node: int, path: str, body: dict) -> dict:
        url = f"{self.bases[node]}/api/v1/apps/{SLUG}{path}"
        response = await self.http.post(url, json=body)
        if response.status_code != 200:
            raise SwitchboardError(response.status_code, "status", response.text[:200])
        return response.json()

    async def one(self, channel: str, via: str, label: Optional[str] = None) -> None:
        """One event, by HTTP or the SDK, retried node after node under one idempotency key."""
        data = self.payload(channel, label)
        error = ""
        for attempt, node in zip(range(ATTEMPTS), itertools.cycle(self.nodes())):
            try:
                if via == "sdk":
                    result = await self.sdks[node].publish([channel], "tick", data, idempotency_key=data["uid"])
                else:
                    body = {"channels": [channel], "type": "tick", "data": data, "idempotency_key": data["uid"]}
                    result = await self.post(node, "/publish", body)
                return self.record(data, result, via)
            except (httpx.HTTPError, SwitchboardError) as e:
                error = f"{type(e).__name__}: {str(e)[:120]}"
                self.failed_attempt(data["uid"], node, error)
                await asyncio.sleep(0.2 * (attempt + 1))
        self.record(data, None, via, error)

    async def batch(self, channel: str, count: int, keyed: bool, avoid: Optional[int] = None) -> None:
        """`count` events on one channel in one batch. Keyed batches are retried (each event
        under its own key); keyless ones are not, as a retry could publish them twice."""
        datas = [self.payload(channel) for _ in range(count)]
        events = [{"channels": [channel], "type": "tick", "data": d} for d in datas]
        if keyed:
            for event, data in zip(events, datas):
                event["idempotency_key"] = data["uid"]
        via = "batch_keyed" if keyed else "batch"
        error = ""
        for attempt, node in zip(range(ATTEMPTS if keyed else 1), itertools.cycle(self.nodes(avoid))):
            try:
                results = (await self.post(node, "/publish/batch", {"events": events}))["results"]
                for data, result in zip(datas, results):
                    self.record(data, result, via)
                return
            except (httpx.HTTPError, SwitchboardError) as e:
                error = f"{type(e).__name__}: {str(e)[:120]}"
                self.failed_attempt(datas[0]["uid"], node, error)
                await asyncio.sleep(0.2 * (attempt + 1))
        for data in datas:
            self.record(data, None, via, error)

    async def burst(self, channel: str, count: int, avoid: Optional[int]) -> float:
        """`count` events on `channel` as fast as the API takes them, through the nodes other
        than `avoid`; returns the seconds it took."""
        started = time.monotonic()
        for done in range(0, count, 100):
            await self.batch(channel, min(100, count - done), keyed=False, avoid=avoid)
        return time.monotonic() - started

    async def steady(self, channels: List[str], rate: float, stop: asyncio.Event) -> None:
        """About `rate` events per second over `channels`, by every mechanism, until `stop`."""
        while not stop.is_set():
            channel = self.rng.choice(channels)
            pick = self.rng.random()
            if pick < 0.4:
                await self.one(channel, "http")
            elif pick < 0.75:
                await self.one(channel, "sdk")
            else:
                await self.batch(channel, 5, keyed=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.expovariate(rate))
            except asyncio.TimeoutError:
                pass

    async def traffic(self, stop: asyncio.Event) -> None:
        """The background load of the whole run: the hot channel, the warm groups, the users."""
        warm = [f"group:{g}" for g in WARM_GROUPS]
        users = [f"user:{u}" for u in self.users]
        await asyncio.gather(self.steady([HOT], 25, stop), self.steady(warm, 12, stop),
                             self.steady(users, 12, stop))

    async def marks(self, channels: List[str], label: str) -> None:
        """One event per channel whose uid is `label:channel`: the warm-up and the final mark."""
        await asyncio.gather(*(self.one(ch, "http", label=f"{label}:{ch}") for ch in channels))

    async def close(self) -> None:
        self.log.close()
        await self.http.aclose()
        for sdk in self.sdks:
            await sdk.aclose()
