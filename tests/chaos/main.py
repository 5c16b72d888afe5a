"""The chaos lane (scripts/chaos): three Switchboard nodes on Redis (or NATS) and PostgreSQL,
each behind fault proxies; native and socket.io clients in their own processes; a publisher
through the HTTP API and the Python SDK; a seeded schedule of faults; then the auditor.

    scripts/chaos [--seed S] [--minutes N] [--broker redis|nats] [--report PATH] [--keep]

A failing run prints its seed and exits 1; `--seed S` replays its schedule."""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from auditor import audit, failures  # noqa: E402
from clients import Ghosts, lane_clients  # noqa: E402
from cluster import HOT, Nats, Node, Postgres, Redis, free_port, spawn, write_app_files  # noqa: E402
from faults import Injector, Proxies  # noqa: E402
from chat import ChatTraffic  # noqa: E402
from inbox import Inbox  # noqa: E402
from publisher import Publisher  # noqa: E402
from report import figures, print_table  # noqa: E402
from schedule import NODES, make_schedule  # noqa: E402
from watchers import MemorySampler, presence_converges  # noqa: E402

#: Seconds of a run that are not faults: start, warm-up, the tail, the final marks, presence
#: and the audit (about 15 s here), so that `--minutes 3` takes about three minutes.
OVERHEAD = 25


class Lab:
    def __init__(self, args, workdir: Path):
        self.args, self.workdir, self.t0 = args, workdir, time.monotonic()
        self.broker = (Nats if args.broker == "nats" else Redis)(workdir)
        self.store = Postgres(workdir)
        self.routes = {}
        self.nodes = []
        self.clients = lane_clients(workdir)
        self.users = [c.user for c in self.clients]
        self.channels = sorted({ch for c in self.clients for ch in c.channels})
        self.proxies = None
        self.ghosts = None
        self.publisher = None

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", flush=True)

    def warm_groups(self) -> dict:
        """Each warm group and its members (the inbox's alerts go to these groups)."""
        groups = {}
        for client in self.clients:
            for group in client.groups:
                if f"group:{group}" != HOT:
                    groups.setdefault(group, []).append(client.user)
        return groups

    def user_homed_on(self, node: int) -> str:
        return next(c.user for c in self.clients if c.kind == "native" and c.home == node)

    async def start(self, binary: str) -> None:
        # Every node of the run, and every restart, runs this copy: a build that replaces the
        # binary mid-run (cargo, in another shell) cannot mix two versions into one run.
        self.binary = self.workdir / "switchboard"
        shutil.copy2(binary, self.binary)
        stat = os.stat(binary)
        self.binary_info = {"path": binary, "bytes": stat.st_size,
                            "modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime))}
        self.broker.start()
        self.store.launch()
        await asyncio.to_thread(self.store.wait_ready)
        write_app_files(self.workdir)
        specs, ports = [], {}
        for i in range(NODES):
            ports[f"b{i}"], ports[f"s{i}"] = free_port(), free_port()
            specs += [f"b{i}={ports[f'b{i}']}:{self.broker.port}", f"s{i}={ports[f's{i}']}:{self.store.port}"]
        proc = await asyncio.create_subprocess_exec(sys.executable, str(Path(__file__).parent / "faultproxy.py"),
                                                    *specs, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, preexec_fn=os.setsid)
        self.proxy_proc = proc
        if (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() != b"ready":
            raise RuntimeError("the fault proxy did not start")
        self.proxies = Proxies(proc)
        for i in range(NODES):
            self.nodes.append(Node(i, self.workdir, str(self.binary), self.broker.url(ports[f"b{i}"]),
                                   self.store.url(ports[f"s{i}"])))
        for node in self.nodes:
            await self.start_node(node)
        self.urls = [n.base for n in self.nodes]
        self.ghosts = Ghosts(self.workdir, self.urls)

    async def start_node(self, node: Node) -> None:
        node.start()
        if not await asyncio.to_thread(node.wait_ready, 30):
            raise RuntimeError(f"{node.name} did not become ready; see {self.workdir}/{node.name}.log")
        if self.ghosts is not None:
            self.ghosts.spawn_on(node.index)

    async def wait_marks(self, prefix: str, seconds: float) -> list:
        """Until every client has the mark on each of its channels; the clients still short."""
        deadline = time.monotonic() + seconds
        while True:
            short = [c.name for c in self.clients if c.marks_seen(prefix) < len(c.channels)]
            if not short or time.monotonic() > deadline:
                return short
            await asyncio.sleep(0.5)

    async def heal(self) -> None:
        """Undo whatever a fault (or an interrupted one) left: paths pass, nodes run."""
        for route in [f"{k}{i}" for i in range(NODES) for k in "bs"]:
            await self.proxies.set(route, "pass")
        for node in self.nodes:
            node.signal(signal.SIGCONT)
            if not node.alive():
                await self.start_node(node)
        for client in self.clients:
            client.signal(signal.SIGCONT)

    def stop(self) -> None:
        for client in self.clients:
            client.stop()
        if self.ghosts:
            self.ghosts.stop()
        for node in self.nodes:  # all drain at once, then each is waited for
            node.signal(signal.SIGCONT)
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        if self.proxies:
            try:
                os.kill(self.proxy_proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.broker.stop()
        self.store.stop("immediate")


async def run_faults(lab: Lab, injector: Injector, fault_seconds: float) -> None:
    schedule = make_schedule(lab.args.seed, fault_seconds)
    lab.say(f"schedule (seed {lab.args.seed}): {len(schedule)} faults over ~{fault_seconds:.0f}s")
    started = time.monotonic()
    for fault in schedule:
        if time.monotonic() - started > fault_seconds + 15:
            lab.say("fault window over; the rest of the schedule is skipped")
            break
        await asyncio.sleep(max(0.0, fault.at - (time.monotonic() - started)))
        lab.say(f"fault {fault.describe()}")
        await injector.run(fault)


async def warm_up(lab: Lab) -> None:
    """Start the cluster, the clients and ghosts; one mark per channel reaches every client."""
    await lab.start(lab.args.binary)
    lab.say(f"cluster up: {', '.join(lab.urls)} on {lab.args.broker} and PostgreSQL (in {lab.workdir})")
    for client in lab.clients:
        client.start(lab.urls, mode="slow" if client.name == "nat6" else "normal")
    for i in range(NODES):
        lab.ghosts.spawn_on(i)
    lab.publisher = Publisher(lab.urls, lab.users, lab.args.seed, str(lab.workdir / "published.jsonl"))
    await asyncio.sleep(2)  # the clients connect
    await lab.publisher.marks(lab.channels, "warm")
    short = await lab.wait_marks("warm", 30)
    if short:
        raise RuntimeError(f"clients never got the warm-up marks: {short}")
    lab.say(f"{len(lab.clients)} clients and {NODES} ghosts connected; warm-up delivered; faults begin")


async def wind_down(lab: Lab, stop: asyncio.Event, background: list) -> tuple:
    """After the last fault: 3 s more traffic, a final mark per channel that every client must
    get, and presence, timed from the last fault and checked again at the very end."""
    def expected():
        return {**{u: "online" for u in lab.users}, **lab.ghosts.expected()}
    converging = asyncio.create_task(presence_converges(lab.urls, expected))
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*background)
    await lab.publisher.marks(lab.channels, "final")
    short = await lab.wait_marks("final", 60)
    lab.say(f"final marks delivered{'' if not short else f'; never reached {short}'}")
    presence = await converging
    final = await presence_converges(lab.urls, expected, bound=5)
    presence.update(final_ghosts=final["ghosts"], final_missing=final["missing"], final_expected=expected())
    lab.say(f"presence converged {presence['converged_s']} s after the last fault")
    return presence, short


async def lane(lab: Lab) -> dict:
    await warm_up(lab)
    inbox = Inbox(lab.urls, lab.users, lab.warm_groups(), lab.args.seed)
    chat = ChatTraffic(lab.urls, lab.args.seed)
    await chat.start()
    memory = MemorySampler(lab.nodes)
    stop = asyncio.Event()
    background = [asyncio.create_task(x) for x in
                  (lab.publisher.traffic(stop), inbox.traffic(stop), chat.traffic(stop), memory.run(stop))]
    injector = Injector(lab)
    try:
        await run_faults(lab, injector, max(30.0, lab.args.minutes * 60 - OVERHEAD))
    finally:
        await lab.heal()
    lab.say("faults over; every path healed; publishing 3 s more")
    presence, short = await wind_down(lab, stop, background)
    for client in lab.clients:
        client.stop()
    result = await asyncio.to_thread(audit, lab.urls[0], [c.describe() for c in lab.clients],
                                     lab.publisher.acked, lab.publisher.unacked, lab.workdir / "audit.json",
                                     presence_final=presence["final_expected"])
    inbox_figures = await inbox.audit(lab.urls[0])
    inbox_figures.update(await chat.audit(lab.urls[0]))
    await lab.publisher.close()
    await inbox.close()
    return figures(lab.args, lab, injector, result, inbox_figures, presence, memory, short)


async def run_lane(lab: Lab) -> dict:
    """The lane, stopping every process it started however it ends (SIGTERM or SIGINT cancels
    it; SIGINT explicitly, since a shell starts background jobs with SIGINT ignored)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, asyncio.current_task().cancel)
    try:
        return await lane(lab)
    finally:
        lab.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--broker", choices=["redis", "nats"], default="redis")
    parser.add_argument("--report", default=None, help="write the figures as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs) even if it passed")
    parser.add_argument("--binary", default=os.environ.get("SWITCHBOARD_BIN", "target/release/switchboard"))
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    args.binary = str(Path(args.binary).resolve())
    if not Path(args.binary).exists():
        print(f"no switchboard binary at {args.binary} (set SWITCHBOARD_BIN)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-chaos."))
    if os.geteuid() == 0:
        os.chmod(workdir, 0o755)  # PostgreSQL runs as the postgres user below it
    report, passed = None, False
    try:
        lab = Lab(args, workdir)
        report = asyncio.run(run_lane(lab))
        passed = report["pass"]
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
    except Exception as e:  # the lane itself broke: still a failure, with its seed
        traceback.print_exc()
        print(f"the lane failed: {type(e).__name__}: {e}", file=sys.stderr)
    if report is not None:
        print_table(report)
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    if passed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}")
    if not passed:
        print(f"CHAOS LANE FAILED: seed {args.seed}; replay with: scripts/chaos --seed {args.seed}"
              f" --minutes {args.minutes:g} --broker {args.broker}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
