"""A TCP fault proxy: sits in a node's path to its broker (Redis, NATS) or its store
(PostgreSQL) and can pass, delay, stall (black-hole), drop or reset that path on command.

Run as its own process, so a busy orchestrator never slows the traffic it forwards:

    python faultproxy.py NAME=LISTEN_PORT:UPSTREAM_PORT ...

then write commands to its stdin, one per line, each answered by `ok` on stdout:

    NAME pass           forward everything (the default)
    NAME delay MS       every chunk arrives MS milliseconds late, order kept
    NAME stall          black hole: connections stay open, nothing moves either way (new ones
                        too); what was sent waits and flows on `pass`, as after a healed partition
    NAME drop           cut: every connection is reset and new ones are reset at once
    NAME reset          one-shot: every connection is reset; new ones are forwarded
"""

import asyncio
import socket
import struct
import sys
import time

CHUNK = 65536
#: Chunks buffered per direction of a link; past it the proxy stops reading, so a stalled
#: peer is back-pressured through TCP instead of buffered here without bound.
QUEUE_CHUNKS = 64


def abort(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except OSError:
        pass


class Route:
    """One listening port forwarding to one upstream port, with its current fault mode."""

    def __init__(self, name: str, listen: int, upstream: int):
        self.name, self.listen, self.upstream = name, listen, upstream
        self.mode, self.delay = "pass", 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.links = set()

    def command(self, mode: str, arg: str = "") -> None:
        if mode in ("drop", "reset"):
            for link in list(self.links):
                link.abort()
        self.mode = "pass" if mode == "reset" else mode
        self.delay = float(arg) / 1000 if mode == "delay" else 0.0
        if self.mode == "stall":
            self.flowing.clear()
        else:
            self.flowing.set()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "drop":
            abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream), timeout=5)
        except (OSError, asyncio.TimeoutError):
            abort(writer)  # the server behind us is down: the node sees its connection fail
            return
        link = Link(self, (reader, writer), (up_reader, up_writer))
        self.links.add(link)
        try:
            await link.run()
        finally:
            self.links.discard(link)


class Link:
    """One proxied connection: two directions, each a reader feeding a writer through a
    bounded queue that carries each chunk's arrival time (for `delay`)."""

    def __init__(self, route: Route, client, upstream):
        self.route = route
        self.writers = [client[1], upstream[1]]
        self.pipes = [(client[0], upstream[1]), (upstream[0], client[1])]

    def abort(self) -> None:
        for writer in self.writers:
            abort(writer)

    async def run(self) -> None:
        readers, writers = [], []
        for reader, writer in self.pipes:
            queue = asyncio.Queue(QUEUE_CHUNKS)
            readers.append(asyncio.create_task(self.read(reader, queue)))
            writers.append(asyncio.create_task(self.write(queue, writer)))
        # When one direction has delivered its EOF (or failed), the whole link ends: neither
        # Redis, NATS nor PostgreSQL half-closes a connection it still uses.
        await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
        for task in readers + writers:
            task.cancel()
        for writer in self.writers:
            writer.close()

    async def read(self, reader: asyncio.StreamReader, queue: asyncio.Queue) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                await queue.put((time.monotonic(), chunk))
        except OSError:
            pass
        await queue.put((time.monotonic(), b""))  # EOF travels behind the data before it

    async def write(self, queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                arrived, chunk = await queue.get()
                await self.route.flowing.wait()
                late = arrived + self.route.delay - time.monotonic()
                if late > 0:
                    await asyncio.sleep(late)
                await self.route.flowing.wait()  # a stall that began during the delay
                if not chunk:
                    return
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass


async def control(routes: dict) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        words = line.decode().split()
        if len(words) >= 2 and words[0] in routes:
            routes[words[0]].command(words[1], words[2] if len(words) > 2 else "")
            print("ok", flush=True)
        else:
            print(f"error: {line!r}", flush=True)
    # stdin closed: the orchestrator is gone, so are we.


async def main(specs) -> None:
    routes = {}
    for spec in specs:
        name, ports = spec.split("=")
        listen, upstream = (int(p) for p in ports.split(":"))
        routes[name] = Route(name, listen, upstream)
        await asyncio.start_server(routes[name].accept, "127.0.0.1", listen, reuse_address=True)
    print("ready", flush=True)
    await control(routes)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
