"""The README's shell examples, run as a newcomer would run them.

    SWITCHBOARD_BIN=target/release/switchboard .venv/bin/pytest -q -p no:cacheprovider tests/readme

Every ```sh block of README.md runs, in the order it appears, in one bash session (so `KEY=...`
and `export ...` carry over from one block to the next, as in a reader's terminal), in a fresh
temporary directory, with `switchboard` on PATH: a temporary bin directory holding a symlink to
SWITCHBOARD_BIN (default: target/release/switchboard). Nothing is built here:
`cargo run --release -p switchboard --` in a block is replaced by `switchboard`, the binary that
command builds and runs. A block that cannot run here must be listed in NOT_RUN with the reason;
any other block that still calls cargo or a repository script fails the test, so a new one is
never skipped silently.

What a reader fills in or adapts, the test fills in:

- `switchboard serve` runs in the background. The README's addresses are 127.0.0.1:8080 (the
  default of `--bind`, taken from `serve --help`) and whatever `--bind` a block names; the test
  starts each server on a free port instead (SWITCHBOARD_BIND=127.0.0.1:0 in the session, and
  `--bind ADDR` rewritten to `--bind 127.0.0.1:0` in the test's copy), reads the real address
  from the banner ("Switchboard is serving the demo app on http://...") or, for a server of a
  manifest, from its "listening addr=..." log line, and rewrites the README's address in later
  blocks to it. This lets the test run beside anything else on port 8080. A server that a later
  block starts on the same README address replaces the earlier one, which is stopped first, as
  the reader would stop it.
- `sk_demo_...` (the README's "KEY=sk_demo_...   # from the banner") becomes the demo's API key
  from the banner.

Each block must exit 0 (the session runs with `set -e -o pipefail`). Then, depending on what it
ran: every curl call must answer 2xx (in the session `curl` is a function adding
`--fail-with-body`) with a JSON object without an "error" key; `switchboard token` must print a
JWT that the server accepts; `switchboard check FILE` must print "ok: FILE"; and every server
must come up (`/readyz` answers 200) and stop within DRAIN_SECONDS of SIGTERM. Every process
the test starts is stopped by its PID (a block that hangs: the session's process group, whose id
is the session's PID) and the temporary directory is removed.

Standard library and pytest only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(os.environ.get("SWITCHBOARD_BIN") or ROOT / "target" / "release" / "switchboard")

# The blocks this test does not run, by their exact text, and why.
NOT_RUN = {
    "scripts/test": "the whole test suite, which runs this test: it needs the repository, cargo, "
    "PostgreSQL, Redis and NATS, and takes many minutes",
    "cargo install --locked --path crates/server": "compiles for minutes and installs into "
    "~/.cargo/bin; what it provides, `switchboard` on PATH, is what the test's bin directory "
    "provides",
}

# The README's way to build and run the binary; the test runs the binary itself instead.
CARGO_RUN = "cargo run --release -p switchboard --"
# Placeholders the README asks the reader to fill in, and the banner field that fills them.
PLACEHOLDERS = {"sk_demo_...": "api_key"}
# Languages that mark a shell block this test would not see: the README uses ```sh for those.
OTHER_SHELLS = {"bash", "shell", "console", "zsh", "shell-session", "sh-session"}

BLOCK_SECONDS = 60  # one block, commands and all
START_SECONDS = 20  # a server from start to /readyz 200
DRAIN_SECONDS = 15  # a server from SIGTERM to gone (its drain timeout is 10 s)

FENCE = re.compile(r"^```([^\s`]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LOOPBACK = re.compile(r"\b(?:127\.0\.0\.1|localhost):\d+\b")
SERVE_LINE = re.compile(r"^\s*switchboard\s+serve\b")
BIND_ARG = re.compile(r"--bind(?:\s+|=)(\S+)")
CURL_CALL = re.compile(r"(?:^|[;&|(]\s*)curl\b", re.MULTILINE)
TOKEN_CALL = re.compile(r"\bswitchboard\s+token\b(.*)")
CHECK_CALL = re.compile(r"\bswitchboard\s+check\s+([^;&|#\n]+)")
JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
BANNER_ADDR = re.compile(r"serving the demo app on http://(\S+)")
LOG_ADDR = re.compile(r"listening addr=(\S+)")
DEV_TOKEN = re.compile(r"Dev token:\s+(\S+)")
API_KEY = re.compile(r"API key:\s+(\S+)")


@dataclass
class Block:
    line: int  # of the opening fence in README.md
    text: str

    def where(self) -> str:
        return f"README.md:{self.line}"


def readme_blocks() -> list[Block]:
    """Every ```sh block of README.md, in order; fails on a shell block under another name."""
    text = README.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        lang = m.group(1).lower()
        if lang in OTHER_SHELLS:
            pytest.fail(f"README.md:{line}: a ```{lang} block; write ```sh so this test runs it")
        if lang == "sh":
            blocks.append(Block(line, m.group(2)))
    return blocks


def http(method: str, url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, OSError) as err:
        return 0, str(err)


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie, exited but not yet reaped by the session's bash, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read(path: Path) -> str:
    """The file's text; "" before a background process has created it."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def json_values(text: str) -> list:
    """The JSON values printed one after another (curl -s adds no newline between answers)."""
    decoder, values, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


@dataclass
class Server:
    pid: int
    readme_addr: str  # the address the README names for it
    addr: str  # where it listens
    out: Path
    err: Path
    banner: dict[str, str] = field(default_factory=dict)  # dev_token, api_key (the demo app)


class Newcomer:
    """A fresh directory, `switchboard` on PATH, and one bash session running README blocks."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="switchboard-readme-"))
        self.servers: list[Server] = []
        self.stopped: list[Server] = []
        self.shell: subprocess.Popen | None = None
        self.shell_log = None
        self.count = 0
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        self.dir = self.tmp / "work"
        bindir = self.tmp / "bin"
        for d in (self.dir, bindir, self.tmp / "home", self.tmp / "session"):
            d.mkdir()
        (bindir / "switchboard").symlink_to(BIN.resolve())
        # A newcomer's environment: none of this machine's Switchboard settings or log level.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SWITCHBOARD_") and k not in ("RUST_LOG", "CURL_HOME")}
        env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                   HOME=str(self.tmp / "home"))
        help_text = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True,
                                   env=env, timeout=30).stdout
        bind_help = help_text.split("--bind", 1)[1].split("\n  -", 1)[0]
        default = re.search(r"\[default: (\S+?)\]", bind_help)
        assert default, f"serve --help names no default for --bind:\n{help_text}"
        self.default_addr = default.group(1)
        # Servers a block starts without --bind listen on a free port (see the module's doc).
        env["SWITCHBOARD_BIND"] = "127.0.0.1:0"
        self.shell_log = open(self.tmp / "session" / "bash.out", "w")
        self.shell = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail"],
            stdin=subprocess.PIPE, stdout=self.shell_log, stderr=subprocess.STDOUT, cwd=self.dir,
            env=env, text=True, start_new_session=True)
        # Every curl call of a block fails the block on a 4xx or 5xx answer, and none hangs.
        self.send("curl() { command curl --fail-with-body --max-time 30 \"$@\"; }\n")

    def send(self, commands: str) -> None:
        assert self.shell and self.shell.stdin
        self.shell.stdin.write(commands)
        self.shell.stdin.flush()

    def live(self, readme_addr: str) -> Server | None:
        return next((s for s in self.servers if s.readme_addr == readme_addr), None)

    def demo_banner(self, key: str, block: Block) -> str:
        for server in reversed(self.servers + self.stopped):
            if key in server.banner:
                return server.banner[key]
        pytest.fail(f"{block.where()}: the block needs the demo banner's {key}, and no demo "
                    "server has printed one yet")

    # --- one block ---------------------------------------------------------------------------

    def run(self, block: Block) -> None:
        self.count += 1
        n = self.count
        text = block.text.replace(CARGO_RUN, "switchboard")
        if re.search(r"(?:^|[\s;&|(])(?:cargo\b|\.?/?scripts/)", text, re.MULTILINE):
            pytest.fail(f"{block.where()}: this block calls cargo or a repository script, which "
                        "the test does not run; run it some other way here, or list it in NOT_RUN "
                        f"with the reason:\n{block.text}")
        for placeholder, key in PLACEHOLDERS.items():
            if placeholder in text:
                text = text.replace(placeholder, self.demo_banner(key, block))

        lines, starts = [], []
        for line in text.split("\n"):
            if not SERVE_LINE.match(line):
                lines.append(self.rewrite_addresses(line, block))
                continue
            if line.rstrip().endswith("\\") or "#" in line:
                pytest.fail(f"{block.where()}: the test runs a serve line in the background and "
                            f"cannot rewrite one with a continuation or a comment: {line}")
            bind = BIND_ARG.search(line)
            readme_addr = bind.group(1) if bind else self.default_addr
            earlier = self.live(readme_addr)
            # The reader stops the server that holds the address first.
            if earlier and not self.stop(earlier):
                pytest.fail(f"{block.where()}: the server on {earlier.addr} (README: {readme_addr}) "
                            f"did not stop within {DRAIN_SECONDS} s of SIGTERM:\n{read(earlier.err)}")
            if bind:
                line = line[:bind.start(1)] + "127.0.0.1:0" + line[bind.end(1):]
            k = len(starts)
            stem = self.tmp / "session" / f"serve-{n}.{k}"
            starts.append((readme_addr, stem))
            out, err, pid = (shlex.quote(f"{stem}.{ext}") for ext in ("out", "err", "pid"))
            lines.append(f"{line.rstrip()} >{out} 2>{err} </dev/null & echo $! >{pid}")

        session = self.tmp / "session"
        script, out, err, done = (session / f"block-{n}.{ext}" for ext in ("sh", "out", "err", "done"))
        script.write_text("\n".join(lines) + "\n")
        q = shlex.quote
        self.send(f"source {q(str(script))} >{q(str(out))} 2>{q(str(err))} </dev/null\n: >{q(str(done))}\n")
        deadline = time.monotonic() + BLOCK_SECONDS
        while not done.exists():
            assert self.shell
            failed = self.shell.poll() is not None
            if failed or time.monotonic() > deadline:
                for readme_addr, stem in starts:  # so that close() stops what did start
                    pid = read(Path(f"{stem}.pid")).strip()
                    if pid:
                        self.servers.append(Server(int(pid), readme_addr, "?", Path(f"{stem}.out"),
                                                   Path(f"{stem}.err")))
                why = (f"failed (status {self.shell.returncode})" if failed else
                       f"ran over {BLOCK_SECONDS} s (a server must be on a line of its own that "
                       "starts with `switchboard serve`, which the test runs in the background)")
                pytest.fail(f"{block.where()}: the block {why}:\n{block.text}\nas run:\n"
                            f"{script.read_text()}\nstdout:\n{read(out)}\nstderr:\n{read(err)}")
            time.sleep(0.05)
        stdout = out.read_text()
        context = f"{block.where()}:\n{block.text}\nstdout:\n{stdout}\nstderr:\n{err.read_text()}"

        for readme_addr, stem in starts:
            self.started(readme_addr, stem, block)
        self.check_effects(text, stdout, context)

    def rewrite_addresses(self, line: str, block: Block) -> str:
        def real(m: re.Match) -> str:
            readme_addr = m.group(0).replace("localhost", "127.0.0.1")
            server = self.live(readme_addr)
            if server is None:
                pytest.fail(f"{block.where()}: the block talks to {m.group(0)}, where no server "
                            f"that the README started listens: {line}")
            return server.addr
        return LOOPBACK.sub(real, line)

    def started(self, readme_addr: str, stem: Path, block: Block) -> None:
        out, err, pid_file = (Path(f"{stem}.{ext}") for ext in ("out", "err", "pid"))
        pid = int(pid_file.read_text())
        server = Server(pid, readme_addr, "", out, err)
        self.servers.append(server)
        deadline = time.monotonic() + START_SECONDS

        def fail(why: str) -> None:
            pytest.fail(f"{block.where()}: the server {why}:\n{block.text}\nstdout:\n"
                        f"{read(out)}\nstderr:\n{read(err)}")

        while True:  # its address, and for the demo app its whole banner
            stdout, stderr = read(out), read(err)
            banner = BANNER_ADDR.search(stdout)
            if banner:
                token, key = DEV_TOKEN.search(stdout), API_KEY.search(stdout)
                if token and key:
                    server.addr = banner.group(1)
                    server.banner = {"dev_token": token.group(1), "api_key": key.group(1)}
                    break
            elif LOG_ADDR.search(stderr):
                server.addr = LOG_ADDR.search(stderr).group(1)
                break
            if not alive(pid):
                fail("exited before it said where it listens")
            if time.monotonic() > deadline:
                fail(f"did not say where it listens within {START_SECONDS} s")
            time.sleep(0.05)
        while (status := http("GET", f"http://{server.addr}/readyz"))[0] != 200:
            if not alive(pid):
                fail("exited before /readyz answered 200")
            if time.monotonic() > deadline:
                fail(f"did not answer /readyz with 200 within {START_SECONDS} s (last: {status})")
            time.sleep(0.1)

    def check_effects(self, text: str, stdout: str, context: str) -> None:
        calls = len(CURL_CALL.findall(text))
        if calls:
            try:
                answers = json_values(stdout)
            except ValueError as err:
                pytest.fail(f"a curl call answered something other than JSON ({err}): {context}")
            assert len(answers) == calls, f"{calls} curl calls, {len(answers)} JSON answers: {context}"
            for answer in answers:
                assert isinstance(answer, dict) and "error" not in answer, \
                    f"a curl call answered {answer!r}: {context}"
        for m in CHECK_CALL.finditer(text):
            for manifest in shlex.split(m.group(1)):
                assert re.search(rf"^ok: {re.escape(manifest)}\b", stdout, re.MULTILINE), \
                    f"switchboard check did not say ok for {manifest}: {context}"
        token_call = TOKEN_CALL.search(text)
        if token_call:
            app = re.search(r"--app(?:\s+|=)(\S+)", token_call.group(1))
            minted = stdout.strip().split("\n")[-1] if stdout.strip() else ""
            assert app and JWT.match(minted), f"switchboard token printed no token: {context}"
            server = self.live(self.default_addr)
            assert server, f"no server of the README runs to accept the token: {context}"
            status, body = http("GET", f"http://{server.addr}/api/v1/apps/{app.group(1)}/me/notifications",
                                minted)
            assert status == 200, f"the server refused the minted token ({status} {body}): {context}"

    # --- the end -----------------------------------------------------------------------------

    def stop(self, server: Server) -> bool:
        """SIGTERM (the README's other way than Ctrl-C); SIGKILL after DRAIN_SECONDS. Whether it
        stopped in time."""
        self.servers.remove(server)
        self.stopped.append(server)
        if not alive(server.pid):
            return True
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_SECONDS
        while alive(server.pid):
            if time.monotonic() > deadline:
                os.kill(server.pid, signal.SIGKILL)
                return False
            time.sleep(0.05)
        return True

    def close(self) -> list[str]:
        """Stops every server and the session, removes the directory; what went wrong."""
        problems = []
        for server in list(self.servers):
            if not self.stop(server):
                problems.append(f"the server on {server.addr} (README: {server.readme_addr}) did "
                                f"not stop within {DRAIN_SECONDS} s of SIGTERM:\n{read(server.err)}")
        if self.shell:
            if self.shell.stdin:
                try:
                    self.shell.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                self.shell.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Still in a block's command: end the session's process group, which the
                # session's bash leads (its id is the PID the test started it with).
                problems.append(stop_group(self.shell))
        if self.shell_log:
            self.shell_log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


def stop_group(shell: subprocess.Popen) -> str:
    """SIGTERM to the process group that shell leads; SIGKILL after DRAIN_SECONDS."""
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        os.killpg(shell.pid, signal.SIGTERM)
        while True:
            shell.poll()  # reaps the session's bash; the others' parent is init by then
            os.killpg(shell.pid, 0)  # ProcessLookupError once the group is empty
            if time.monotonic() > deadline:
                os.killpg(shell.pid, signal.SIGKILL)
                shell.wait()
                return f"the session's commands did not stop within {DRAIN_SECONDS} s of SIGTERM"
            time.sleep(0.05)
    except ProcessLookupError:
        shell.wait()
    return ""


def test_every_sh_block_of_the_readme_runs() -> None:
    if not BIN.is_file():
        pytest.fail(f"no binary at {BIN}: build it (cargo build --release -p switchboard --locked) "
                    "or point SWITCHBOARD_BIN at one")
    blocks = readme_blocks()
    assert blocks, "README.md has no ```sh block"
    skipped = set()
    newcomer = Newcomer()
    try:
        for block in blocks:
            if block.text.strip() in NOT_RUN:
                skipped.add(block.text.strip())
                continue
            newcomer.run(block)
    finally:
        problems = newcomer.close()
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    stale = set(NOT_RUN) - skipped
    assert not stale, f"NOT_RUN lists blocks that README.md no longer has: {sorted(stale)}"
