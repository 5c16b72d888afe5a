#!/usr/bin/env python3
"""Benchmark campaign: Switchboard beside its peers, interleaved, medians of repetitions.

Every server is started fresh for every measurement, on 127.0.0.1; the load generator
(target/release/loadgen) is a separate process. Results print as a Markdown table and are
saved as JSON under target/bench/.

  bench/run.py --quick                 # seconds: Switchboard and the bare reference, small sizes (CI)
  bench/run.py                         # the full campaign (installs the peers on first use)
  bench/run.py --targets switchboard,bare --reps 5
"""
import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
PEERS = ROOT / "bench" / "peers"
VENV = ROOT / ".venv-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SECRET, KEY = "bench-secret", "sk_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def install_peers(targets) -> None:
    """Installs the peers from their registries, once."""
    if "node-ws" in targets and not (PEERS / "node" / "node_modules" / "ws").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=PEERS / "node", check=True)
    if "seed-fastapi" in targets and not (VENV / "bin" / "uvicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        req = PEERS / "seed_fastapi" / "requirements.txt"
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "-r", str(req)], check=True)


def command(target: str, port: int, workdir: str):
    """How to start each target, and which load generator contract it speaks."""
    if target == "switchboard":
        return ([str(RELEASE / "switchboard"), "serve", "--manifest", str(ROOT / "bench" / "manifest.json"),
                 "--bind", f"127.0.0.1:{port}", "--store", f"sqlite://{workdir}/bench.db", "--node-id", "bench"],
                None, "switchboard")
    if target == "bare":
        return [str(RELEASE / "bare"), f"127.0.0.1:{port}"], None, "peer"
    if target == "node-ws":
        return ["node", str(PEERS / "node" / "ws-server.js"), str(port)], None, "peer"
    if target == "seed-fastapi":
        return ([str(VENV / "bin" / "uvicorn"), "app:app", "--port", str(port), "--log-level", "warning"],
                PEERS / "seed_fastapi", "peer")
    raise SystemExit(f"unknown target {target}")


class Server:
    def __init__(self, target: str):
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="sb-bench-")
        argv, cwd, self.kind = command(target, self.port, self.workdir)
        env = dict(os.environ, BENCH_JWT_SECRET=SECRET, BENCH_API_KEY=KEY, RUST_LOG="warn")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{target} did not start")

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def loadgen(server: Server, scenario: str, **options):
    argv = [str(RELEASE / "loadgen"), scenario, "--kind", server.kind, "--addr", f"127.0.0.1:{server.port}",
            "--secret", SECRET, "--key", KEY]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    return argv


def idle(target: str, clients: int) -> dict:
    server = Server(target)
    try:
        before = server.rss()
        proc = subprocess.Popen(loadgen(server, "idle", clients=clients), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit)
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"loadgen failed against {target}")
        result = json.loads(line)
        time.sleep(1)  # let the server settle its allocations before reading RSS
        result["bytes_per_conn"] = (server.rss() - before) / clients
        proc.stdin.close()
        proc.wait(timeout=60)
        return result
    finally:
        server.stop()


def flow(target: str, scenario: str, clients: int, rate: int, seconds: int, batch: int = 1) -> dict:
    server = Server(target)
    try:
        cpu = server.cpu_seconds()
        out = subprocess.run(loadgen(server, scenario, clients=clients, rate=rate, seconds=seconds, batch=batch),
                             capture_output=True, text=True, timeout=seconds + 120, preexec_fn=raise_fd_limit)
        if out.returncode != 0:
            return {"error": out.stderr.strip()[-300:], "lost": -1, "p99_ms": float("inf"), "received": 0}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["cpu_us_per_delivery"] = (server.cpu_seconds() - cpu) * 1e6 / max(result["received"], 1)
        return result
    finally:
        server.stop()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def campaign(targets, reps, sizes, fanout, rates, seconds):
    rows = {t: {} for t in targets}
    for size in sizes:
        for rep in range(reps):
            for t in targets:  # interleaved: A B C, A B C, ...
                r = idle(t, size)
                rows[t].setdefault(f"idle_{size}", []).append(r)
                print(f"  idle {size} {t} rep {rep}: {r['bytes_per_conn']:.0f} B/conn, {r['connects_per_sec']:.0f} conn/s", flush=True)
    for rate in rates:
        for rep in range(reps):
            for t in targets:
                r = flow(t, "broadcast", fanout, rate, seconds)
                rows[t].setdefault(f"broadcast_{rate}", []).append(r)
                print(f"  broadcast {fanout} subs x {rate}/s {t} rep {rep}: {r.get('deliveries_per_sec', 0):.0f} deliveries/s,"
                      f" lost {r['lost']}, p99 {r['p99_ms']} ms, {r.get('cpu_us_per_delivery', 0):.2f} us/delivery", flush=True)
    return rows


def summarize(rows, sizes, fanout, rates) -> str:
    lines = ["| target | " + " | ".join(
        [f"idle B/conn at {s}" for s in sizes] + [f"connects/s at {sizes[-1]}"] +
        [f"broadcast {fanout} subs x {r}/s: deliveries/s, lost, p99 ms, server us/delivery" for r in rates]) + " |"]
    lines.append("|" + " --- |" * (1 + len(sizes) + 1 + len(rates)))
    for t, data in rows.items():
        cells = [f"{median([r['bytes_per_conn'] for r in data[f'idle_{s}']]):,.0f}" for s in sizes]
        cells.append(f"{median([r['connects_per_sec'] for r in data[f'idle_{sizes[-1]}']]):,.0f}")
        for rate in rates:
            rs = data[f"broadcast_{rate}"]
            p99 = median([r["p99_ms"] for r in rs])
            lost = "error" if any("error" in r for r in rs) else max(r["lost"] for r in rs)
            cells.append("{:,.0f}, {}, {}, {:.2f}".format(
                median([r.get("deliveries_per_sec", 0) for r in rs]), lost,
                "-" if p99 is None else f"{p99:.1f}", median([r.get("cpu_us_per_delivery", 0) for r in rs])))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds: switchboard and bare, small sizes")
    parser.add_argument("--targets", default="switchboard,bare,node-ws,seed-fastapi")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--rates", default="20,160,640", help="broadcast publishes per second")
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.targets, args.reps, args.sizes, args.fanout, args.rates, args.seconds = "switchboard,bare", 1, "500", 200, "50", 1
    targets = args.targets.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    if not (RELEASE / "loadgen").exists() or not (RELEASE / "switchboard").exists():
        subprocess.run(["cargo", "build", "--release", "-p", "switchboard", "-p", "switchboard-bench"], cwd=ROOT, check=True)
    install_peers(targets)
    raise_fd_limit()
    rows = campaign(targets, args.reps, sizes, args.fanout, rates, args.seconds)
    table = summarize(rows, sizes, args.fanout, rates)
    out = ROOT / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(rows, indent=1))
    print("\n" + table)


if __name__ == "__main__":
    main()
