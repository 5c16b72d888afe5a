"""The processes under test: Redis or NATS, PostgreSQL, and three `switchboard serve` nodes.

Every server keeps its port and data directory across restarts, so a restart is the same
server coming back (as an operator's would), and every process is started here and stopped
here by its PID, never by name.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import httpx

SLUG = "chaos"
SECRET = "chaos-secret"
API_KEY = "sk_chaos"
#: Hot channel and warm channels: group channels, durable history that outlasts a run, so every
#: client must get every event exactly once. User channels keep only USER_HISTORY events, so a
#: client away for longer is told its user channel is unrecovered.
HOT = "group:hot"
WARM_GROUPS = ["g0", "g1", "g2"]
USER_HISTORY = 200
#: The most a channel's history may keep. About 100 events a second go out, a third to the hot
#: channel: a run over about 15 minutes trims the oldest of it (as configured, not a fault).
GROUP_HISTORY = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc: Optional[subprocess.Popen], sig=signal.SIGTERM, wait: float = 10.0) -> None:
    """Signals one child we started (by its PID) and reaps it; SIGKILL if it outlives `wait`."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        os.kill(proc.pid, sig)
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the lane's process dies, however it dies (so
    a killed lane leaves no server, node or client behind), and a session of its own (so a
    Ctrl-C in the terminal reaches the lane, which then stops everything in order)."""
    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(args, user: Optional[str] = None, **options) -> subprocess.Popen:
    """Starts a child of the lane, as `user` if given (we are root). Call it on the main
    thread: the death signal fires when the thread that started the child ends."""
    options.setdefault("stdout", subprocess.DEVNULL)
    options.setdefault("stderr", subprocess.DEVNULL)
    # Popen changes the user before running preexec_fn, so the death signal (which a change
    # of credentials clears) is set after it.
    return subprocess.Popen(args, preexec_fn=die_with_parent, user=user, **options)


def manifest() -> dict:
    # ping_interval 2 s: a client frozen for more than 4-6 s is dropped, which is what the
    # slow-client fault wants to provoke.
    return {
        "slug": SLUG,
        "auth_policy": {"jwt": {"secret_file": "secret.txt"}},
        "api_key_file": "key.txt",
        "websockets": {
            "realtime": {"path": "/ws", "ping_interval": 2},
            "legacy": {"path": "/socket.io/", "protocol": "socket.io", "ping_interval": 2},
        },
        "presence": {"offline_grace": "1s"},
        "history": {"user": {"size": USER_HISTORY, "ttl": "2h"}, "group": {"size": GROUP_HISTORY, "ttl": "2h"}},
    }


class Redis:
    name = "redis"

    def __init__(self, workdir: Path):
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        self.proc = spawn(args)
        if not wait_for_port(self.port, 10):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        stop_process(self.proc)

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/"


class Nats:
    name = "nats"

    def __init__(self, workdir: Path):
        self.dir = workdir / "nats"
        self.dir.mkdir()
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        args = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-l", str(self.dir / "nats.log")]
        self.proc = spawn(args)
        if not wait_for_port(self.port, 10):
            raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        stop_process(self.proc)

    def url(self, port: int) -> str:
        return f"nats://127.0.0.1:{port}"


class Postgres:
    """Debian's PostgreSQL binaries run directly; as the postgres user when we are root
    (initdb refuses root)."""

    name = "postgres"

    def __init__(self, workdir: Path):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = bins[-1]
        self.dir = workdir / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "switchboard", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90)

    def launch(self) -> None:
        """The postmaster as our own child (not through pg_ctl, which would detach it), so it
        dies with the lane; its log goes to server.log. On the main thread (see `spawn`)."""
        args = [str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-c", "listen_addresses=127.0.0.1",
                "-p", str(self.port), "-k", str(self.dir), "-c", "fsync=off", "-c", "max_connections=300"]
        log = open(self.dir / "server.log", "ab")
        self.proc = spawn(args, stdout=log, stderr=log, user="postgres" if os.geteuid() == 0 else None)
        log.close()

    def wait_ready(self) -> None:
        """Until it accepts connections (bounded; may run in a worker thread)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)])
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.dir}/server.log")

    def stop(self, mode: str = "fast") -> None:
        """`fast` (SIGINT: sessions are ended, a clean shutdown) or `immediate` (SIGQUIT: no
        shutdown checkpoint, crash recovery at the next start)."""
        stop_process(self.proc, signal.SIGQUIT if mode == "immediate" else signal.SIGINT, wait=60)

    def url(self, port: int) -> str:
        return f"postgres://switchboard@127.0.0.1:{port}/postgres?sslmode=disable"


class Node:
    """One `switchboard serve` process on a fixed port; restarts keep the port and log file."""

    def __init__(self, index: int, workdir: Path, binary: str, broker_url: str, store_url: str):
        self.index = index
        self.name = f"n{index}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir, self.binary = workdir, binary
        self.broker_url, self.store_url = broker_url, store_url
        self.proc: Optional[subprocess.Popen] = None
        self.frozen = False
        self.incarnations: List[int] = []

    def start(self) -> None:
        args = [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--manifest", "chaos.json",
                "--node-id", self.name, "--broker", self.broker_url, "--store", self.store_url,
                "--drain-grace", "250ms", "--drain-timeout", "3s"]
        log = open(self.workdir / f"{self.name}.log", "ab")
        env = {**os.environ, "RUST_LOG": os.environ.get("CHAOS_RUST_LOG", "info")}
        self.proc = spawn(args, cwd=self.workdir, stdout=log, stderr=log, env=env)
        log.close()
        self.frozen = False
        self.incarnations.append(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, seconds: float = 30) -> bool:
        """Until /readyz answers 200 (the node started, reached its store and its broker)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.alive():
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)
            self.frozen = sig == signal.SIGSTOP or (self.frozen and sig != signal.SIGCONT)

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, wait=15)


def write_app_files(workdir: Path) -> None:
    import json
    (workdir / "secret.txt").write_text(SECRET)
    (workdir / "key.txt").write_text(API_KEY)
    (workdir / "chaos.json").write_text(json.dumps(manifest(), indent=1))
