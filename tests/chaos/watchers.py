"""What the lane watches while it runs: each node's memory, and afterwards presence."""

import asyncio
import time
from typing import Callable, Dict, List

import httpx

from cluster import API_KEY, SLUG, Node

#: Bound on presence convergence after the last fault: a dead node is dropped 3-4 s after its
#: last heartbeat, a dead client 4-6 s after its last pong (ping_interval 2 s), then the 1 s
#: offline grace; the rest is margin for a node that restarted in the last fault.
PRESENCE_BOUND = 20.0
#: Per-node memory budget (peak RSS). A node of this lane holds ~12 connections; the gap fill
#: holds at most 1,024 events or 16 MiB behind a gap.
MEMORY_BUDGET_MB = 128


def status_of(path: str, field: str) -> int:
    """A `kB` field of /proc/PID/status, in kB (0 when the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """Samples every node's VmRSS and VmHWM (the kernel's own peak) twice a second; the peak of
    a node is the highest over all its incarnations."""

    def __init__(self, nodes: List[Node]):
        self.nodes = nodes
        self.peak_kb: Dict[str, int] = {n.name: 0 for n in nodes}

    def sample(self) -> None:
        for node in self.nodes:
            if node.alive():
                path = f"/proc/{node.proc.pid}/status"
                seen = max(status_of(path, "VmRSS"), status_of(path, "VmHWM"))
                self.peak_kb[node.name] = max(self.peak_kb[node.name], seen)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                pass
        self.sample()

    def peaks_mb(self) -> Dict[str, float]:
        return {name: round(kb / 1024, 1) for name, kb in self.peak_kb.items()}


async def presence_views(bases: List[str], users: List[str]) -> List[Dict[str, str]]:
    """Each node's answer: user -> online|offline (away and busy count as online)."""
    views = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=3) as http:
        for base in bases:
            try:
                answer = (await http.get(f"{base}/api/v1/apps/{SLUG}/presence",
                                         params={"users": ",".join(users)})).json()["presence"]
                views.append({u: ("offline" if answer[u]["status"] == "offline" else "online") for u in users})
            except (httpx.HTTPError, KeyError, ValueError):
                views.append({})
    return views


async def presence_converges(bases: List[str], expected: Callable[[], Dict[str, str]],
                             bound: float = PRESENCE_BOUND) -> dict:
    """Polls every node until all agree with `expected()` (re-evaluated each round: a ghost
    client that just noticed its connection died has exited), at most `bound` seconds.
    Ghosts: users some node shows online who are gone; missing: users connected but shown
    offline."""
    started = time.monotonic()
    ghosts, missing = [], []
    while True:
        want = expected()
        users = sorted(want)
        views = await presence_views(bases, users)
        ghosts = sorted({u for v in views for u in users if want[u] == "offline" and v.get(u) != "offline"})
        missing = sorted({u for v in views for u in users if want[u] == "online" and v.get(u) != "online"})
        elapsed = time.monotonic() - started
        if not ghosts and not missing:
            return {"converged_s": round(elapsed, 1), "ghosts": [], "missing": [], "users": len(users)}
        if elapsed > bound:
            return {"converged_s": None, "ghosts": ghosts, "missing": missing, "users": len(users)}
        await asyncio.sleep(0.5)
