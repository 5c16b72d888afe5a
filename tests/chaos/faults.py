"""The fault injector: runs each fault of the schedule against the lab (nodes, proxies, the
broker and store servers, clients) and undoes it. Blocking steps (a server restart, waiting
for a node to be ready) run in a worker thread so that the publisher keeps publishing."""

import asyncio
import signal
import time
from collections import Counter

from cluster import HOT
from schedule import Fault


class Proxies:
    """The fault proxy process: one route per node to the broker (`b0`...) and to the store
    (`s0`...)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.lock = asyncio.Lock()

    async def set(self, route: str, mode: str, arg: str = "") -> None:
        async with self.lock:
            self.proc.stdin.write(f"{route} {mode} {arg}\n".encode())
            await self.proc.stdin.drain()
            answer = await asyncio.wait_for(self.proc.stdout.readline(), 10)
            if answer.strip() != b"ok":
                raise RuntimeError(f"fault proxy: {answer!r}")


class Injector:
    def __init__(self, lab):
        self.lab = lab
        self.counts = Counter()
        self.notes = []  # what happened, for the report (e.g. the burst timings)

    async def run(self, fault: Fault) -> None:
        started = time.monotonic()
        await getattr(self, fault.kind)(fault)
        self.counts[fault.kind] += 1
        self.lab.say(f"fault {fault.describe()} done in {time.monotonic() - started:.1f}s")

    # Nodes.

    async def node_kill(self, f: Fault) -> None:
        node = self.lab.nodes[f.node]
        self.lab.ghosts.kill_on(f.node)  # its user will not come back: presence must drop them
        node.kill()
        await asyncio.sleep(f.seconds)
        await self.lab.start_node(node)

    async def node_freeze(self, f: Fault) -> None:
        node = self.lab.nodes[f.node]
        node.signal(signal.SIGSTOP)
        await asyncio.sleep(f.seconds)
        node.signal(signal.SIGCONT)

    async def rolling_restart(self, f: Fault) -> None:
        """Each node in turn: SIGTERM (drain: 1001 to its clients), start, wait until ready."""
        for node in self.lab.nodes:
            await asyncio.to_thread(node.stop)
            await self.lab.start_node(node)

    # A node's path to the broker or the store, through its fault proxy.

    async def path_fault(self, route: str, mode: str, seconds: float, arg: str = "") -> None:
        await self.lab.proxies.set(route, mode, arg)
        await asyncio.sleep(seconds)
        await self.lab.proxies.set(route, "pass")

    async def broker_cut(self, f: Fault) -> None:
        """The node is cut from the broker while the hot channel gets a burst of more than a
        page, and one of its users a burst longer than that user's history: when the link
        is back, the node must fill the first gap page by page and close the user's
        connections with 4009 for the second."""
        await self.lab.proxies.set(f"b{f.node}", "drop")
        started = time.monotonic()
        user = self.lab.user_homed_on(f.node)
        took = await asyncio.gather(
            self.lab.publisher.burst(HOT, f.params["hot_burst"], avoid=f.node),
            self.lab.publisher.burst(f"user:{user}", f.params["user_burst"], avoid=f.node))
        self.notes.append(f"broker_cut n{f.node}: {f.params['hot_burst']} events on {HOT} in {took[0]:.1f}s, "
                          f"{f.params['user_burst']} on user:{user} in {took[1]:.1f}s")
        await asyncio.sleep(max(0.0, f.seconds - (time.monotonic() - started)) + 1.0)
        await self.lab.proxies.set(f"b{f.node}", "pass")

    async def broker_stall(self, f: Fault) -> None:
        await self.path_fault(f"b{f.node}", "stall", f.seconds)

    async def broker_delay(self, f: Fault) -> None:
        await self.path_fault(f"b{f.node}", "delay", f.seconds, str(f.params["ms"]))

    async def broker_reset(self, f: Fault) -> None:
        await self.lab.proxies.set(f"b{f.node}", "reset")

    async def store_cut(self, f: Fault) -> None:
        await self.path_fault(f"s{f.node}", "drop", f.seconds)

    async def store_stall(self, f: Fault) -> None:
        await self.path_fault(f"s{f.node}", "stall", f.seconds)

    async def store_delay(self, f: Fault) -> None:
        await self.path_fault(f"s{f.node}", "delay", f.seconds, str(f.params["ms"]))

    # The shared servers.

    async def broker_restart(self, f: Fault) -> None:
        await asyncio.to_thread(self.lab.broker.stop)
        await asyncio.sleep(f.seconds)
        self.lab.broker.start()  # on this thread: its child dies with us (see cluster.spawn)

    async def store_restart(self, f: Fault) -> None:
        await asyncio.to_thread(self.lab.store.stop, f.params["mode"])
        await asyncio.sleep(f.seconds)
        self.lab.store.launch()  # on this thread, like every child (see cluster.spawn)
        await asyncio.to_thread(self.lab.store.wait_ready)

    # Clients.

    async def reconnect_storm(self, f: Fault) -> None:
        """Every client drops its connection at the same moment and comes back at once."""
        for client in self.lab.clients:
            client.signal(signal.SIGUSR1)

    async def slow_client(self, f: Fault) -> None:
        """A client stops reading (SIGSTOP). A native client frozen past its ping timeout (4-6 s)
        is dropped by the server; the burst on its user channel, longer than that channel's
        history, comes just before it wakes, so that its resume cannot be complete and must
        say so. A shorter freeze must lose nothing."""
        client = self.lab.clients[f.params["client"] % len(self.lab.clients)]
        client.signal(signal.SIGSTOP)
        await asyncio.sleep(max(0.0, f.seconds - 1.5))
        took = await self.lab.publisher.burst(f"user:{client.user}", f.params["user_burst"], avoid=None)
        self.notes.append(f"slow_client {client.name} ({f.seconds:.1f}s): {f.params['user_burst']} events on "
                          f"user:{client.user} in {took:.1f}s")
        await asyncio.sleep(max(0.0, 1.5 - took))
        client.signal(signal.SIGCONT)
