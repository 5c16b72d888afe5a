"""A native WebSocket client of the chaos lane, in its own process. It stays subscribed to its
user's channel and its groups for the whole run: on every disconnect it reconnects (home node
first, then the others) with `?resume=1` and resumes from the last position it processed on
each channel, as PROTOCOL.md tells clients to. Everything it receives is logged as JSON lines
for the auditor; it deduplicates nothing, so a duplicate the server sends shows in its log.

SIGUSR1 drops the connection at once (a reconnect storm); SIGTERM ends the client.
Mode `slow` sleeps after every event (a slow consumer); mode `ghost` connects once and exits
when that connection ends (a user who leaves: presence must show them offline).
"""

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
from switchboard_sdk.security import mint_token  # noqa: E402


class Log:
    """JSON lines, flushed at least every 0.25 s so the orchestrator sees progress."""

    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1 << 16)
        self.flushed = time.monotonic()

    def write(self, kind: str, **fields) -> None:
        self.file.write(json.dumps({"k": kind, "t": round(time.time(), 3), **fields}) + "\n")
        if time.monotonic() - self.flushed > 0.25:
            self.flush()

    def flush(self) -> None:
        self.file.flush()
        self.flushed = time.monotonic()


class Client:
    def __init__(self, args):
        self.args = args
        self.urls = args.urls.split(",")
        self.log = Log(args.log)
        self.positions = {}  # channel -> {"epoch", "seq"}: the last event processed
        self.ws = None
        self.stopping = False

    def token(self) -> str:
        groups = [g for g in self.args.groups.split(",") if g]
        return mint_token(self.args.secret, self.args.user, groups=groups, ttl=7200)

    async def flusher(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.log.flush()

    async def run(self) -> None:
        asyncio.create_task(self.flusher())
        attempt = 0
        deadline = time.monotonic() + self.args.max_seconds
        while not self.stopping and time.monotonic() < deadline:
            node = (self.args.home + attempt) % len(self.urls)
            if await self.session(self.urls[node]):
                attempt = 0  # it was connected: next time, home first again
            else:
                attempt += 1
            if self.args.mode == "ghost" or self.stopping:
                break
            await asyncio.sleep(random.uniform(0.05, 0.4))
        self.log.write("exit")
        self.log.flush()

    async def session(self, base: str) -> bool:
        """One connection, until it ends; whether it got as far as `connected`."""
        query = f"?token={self.token()}" + ("&resume=1" if self.positions else "")
        url = base.replace("http", "ws", 1) + "/ws" + query
        connected = False
        try:
            async with connect(url, open_timeout=5, ping_interval=2, ping_timeout=4, close_timeout=2,
                               max_size=4 << 20) as ws:
                self.ws = ws
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                connected = first.get("type") == "connected"
                self.log.write("connected", node=first.get("data", {}).get("connection_id", "?").split("-")[0],
                               resume=bool(self.positions), ok=connected)
                if not connected:
                    return False
                if self.positions:
                    await ws.send(json.dumps({"type": "resume", "ref": "r", "data": {"positions": self.positions}}))
                async for raw in ws:
                    await self.handle(json.loads(raw))
                self.log.write("close", code=ws.close_code, reason=ws.close_reason)  # 1000 or 1001
        except ConnectionClosed as e:
            self.log.write("close", code=e.rcvd.code if e.rcvd else None, reason=e.rcvd.reason if e.rcvd else "")
        except (OSError, asyncio.TimeoutError, InvalidHandshake) as e:
            self.log.write("connect_failed", url=base, error=type(e).__name__)
        finally:
            self.ws = None
        return connected

    async def handle(self, frame: dict) -> None:
        if frame.get("type") == "resumed":
            data = frame["data"]
            self.log.write("resumed", recovered=data.get("recovered"), missed=data.get("missed"),
                           unrecovered=data.get("unrecovered", []), positions=data.get("positions", {}))
            for channel, position in data.get("positions", {}).items():
                self.advance(channel, position)
        elif "seq" in frame and "channel" in frame:
            data = frame.get("data")
            uid = data.get("uid") if isinstance(data, dict) else None
            self.log.write("ev", ch=frame["channel"], seq=frame["seq"], ep=frame["epoch"], uid=uid,
                           type=frame["type"])
            self.advance(frame["channel"], {"epoch": frame["epoch"], "seq": frame["seq"]})
            if self.args.mode == "slow":
                await asyncio.sleep(0.003)
        elif str(frame.get("type")).startswith("presence:"):
            self.log.write("presence", type=frame["type"], user=(frame.get("data") or {}).get("userKey"))
        elif frame.get("type") == "error":
            self.log.write("error", data=frame.get("data"))

    def advance(self, channel: str, position: dict) -> None:
        """A real client keeps the newest position it processed; a repeat never moves it back."""
        known = self.positions.get(channel)
        if known is None or known["epoch"] != position["epoch"] or position["seq"] > known["seq"]:
            self.positions[channel] = {"epoch": position["epoch"], "seq": position["seq"]}

    def drop(self) -> None:
        if self.ws is not None:
            self.log.write("storm")
            self.ws.transport.abort()

    def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            self.ws.transport.abort()


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--user", "--groups", "--urls", "--log", "--secret"):
        parser.add_argument(name, required=True)
    parser.add_argument("--home", type=int, default=0)
    parser.add_argument("--mode", choices=["normal", "slow", "ghost"], default="normal")
    parser.add_argument("--max-seconds", type=float, default=3600)
    client = Client(parser.parse_args())
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, client.drop)
    loop.add_signal_handler(signal.SIGTERM, client.stop)
    await client.run()


if __name__ == "__main__":
    asyncio.run(main())
