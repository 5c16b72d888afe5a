"""The lane's client processes: native WebSocket clients (native_client.py), socket.io-client
clients (sio_client.mjs, on Node.js) and ghosts, users who connect once and leave (so presence
must show them offline)."""

import json
import os
import signal
import sys
from pathlib import Path
from typing import Dict, List, Optional

from switchboard_sdk.security import mint_token

from cluster import HOT, SECRET, WARM_GROUPS, spawn, stop_process
from schedule import NATIVE_CLIENTS, NODES, SIO_CLIENTS

HERE = Path(__file__).resolve().parent


class ClientProc:
    def __init__(self, name: str, kind: str, user: str, groups: List[str], home: int, log: Path):
        self.name, self.kind, self.user, self.groups, self.home, self.log = name, kind, user, groups, home, log
        self.channels = [f"user:{user}", *(f"group:{g}" for g in groups)]
        self.proc = None
        self.read_at = 0
        self.uids = set()  # the marks seen so far (warm-up, final)

    def start(self, urls: List[str], mode: str = "normal") -> None:
        if self.kind == "native":
            self.proc = spawn([sys.executable, str(HERE / "native_client.py"), "--user", self.user,
                               "--groups", ",".join(self.groups), "--urls", ",".join(urls), "--home", str(self.home),
                               "--log", str(self.log), "--secret", SECRET, "--mode", mode],
                              stderr=open(f"{self.log}.stderr", "ab"))
        else:
            env = {**os.environ, "URLS": ",".join(urls), "HOME_NODE": str(self.home), "LOG": str(self.log),
                   "TOKEN": mint_token(SECRET, self.user, groups=self.groups, ttl=7200),
                   "TRANSPORTS": "polling,websocket" if self.home == 1 else "websocket"}
            self.proc = spawn(["node", str(HERE / "sio_client.mjs")], env=env, stderr=open(f"{self.log}.stderr", "ab"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, wait=5)

    def marks_seen(self, prefix: str) -> int:
        """How many of this client's channels have delivered the mark `prefix:channel` yet
        (reads only what the log gained since the last call)."""
        if self.log.exists():
            with open(self.log) as f:
                f.seek(self.read_at)
                chunk = f.read()
                complete = chunk[: chunk.rfind("\n") + 1]
                self.read_at += len(complete.encode())
            for line in complete.splitlines():
                if '"ev"' in line and ":" in line:
                    uid = json.loads(line).get("uid") or ""
                    if uid.startswith(("warm:", "final:")):
                        self.uids.add(uid)
        return sum(1 for ch in self.channels if f"{prefix}:{ch}" in self.uids)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "channels": self.channels, "log": str(self.log)}


def lane_clients(workdir: Path) -> List[ClientProc]:
    """Native clients nat0.. (two homed on each node; the last one reads slowly) and
    socket.io clients sio0.. (one per node; sio1 starts on HTTP long-polling). Each is in
    `group:hot` and one warm group."""
    clients = []
    for k in range(NATIVE_CLIENTS):
        groups = [HOT.split(":")[1], WARM_GROUPS[k % len(WARM_GROUPS)]]
        clients.append(ClientProc(f"nat{k}", "native", f"nat{k}", groups, k % NODES, workdir / f"nat{k}.jsonl"))
    for k in range(SIO_CLIENTS):
        groups = [HOT.split(":")[1], WARM_GROUPS[k % len(WARM_GROUPS)]]
        clients.append(ClientProc(f"sio{k}", "sio", f"sio{k}", groups, k % NODES, workdir / f"sio{k}.jsonl"))
    return clients


class Ghosts:
    """One ghost per node at a time: a user connected only there. Killed with their node (or
    dropped by a drain or a frozen node), they never come back, and presence must say offline,
    on every node and to the clients that share their group (g0)."""

    def __init__(self, workdir: Path, urls: List[str]):
        self.workdir, self.urls = workdir, urls
        self.all: List[ClientProc] = []
        self.on: Dict[int, Optional[ClientProc]] = {}

    def spawn_on(self, node: int) -> None:
        name = f"ghost{len(self.all)}"
        ghost = ClientProc(name, "native", name, [WARM_GROUPS[0]], node, self.workdir / f"{name}.jsonl")
        ghost.start(self.urls, mode="ghost")
        self.all.append(ghost)
        self.on[node] = ghost

    def kill_on(self, node: int) -> None:
        ghost = self.on.get(node)
        if ghost is not None and ghost.alive():
            ghost.proc.kill()
            ghost.proc.wait(timeout=5)

    def expected(self) -> Dict[str, str]:
        return {g.user: "online" if g.alive() else "offline" for g in self.all}

    def stop(self) -> None:
        for ghost in self.all:
            ghost.stop()
