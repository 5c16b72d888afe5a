"""A live Switchboard for your tests: the binary, started on a free loopback port.

    from switchboard_sdk.testing import serve

    env = {"MY_APP_JWT_SECRET": "test", "MY_APP_API_KEY": "sk_test"}
    with serve("my_app.json", env=env) as url:
        sb = Switchboard(url, "sk_test", "my_app")
        ...

The manifest is a file, or a dict written to the server's temporary directory. An app reads its
JWT secret and API key from `{SLUG}_JWT_SECRET` and `{SLUG}_API_KEY` unless the manifest names
others (docs/MANIFEST.md). The binary is `binary`, else `$SWITCHBOARD_BIN`, else `switchboard`
on the PATH. Its store is a fresh SQLite file unless you name one; it is killed when the block
ends.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Union


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    manifest: Optional[Union[str, Path, Mapping[str, Any]]],
    *,
    env: Optional[Dict[str, str]] = None,
    binary: Optional[str] = None,
    port: Optional[int] = None,
    store: Optional[str] = None,
    timeout: float = 20.0,
) -> Iterator[str]:
    """Runs `switchboard serve` for `manifest` (a path or a dict; the demo app when `None`) and
    yields its base URL."""
    binary = binary or os.environ.get("SWITCHBOARD_BIN") or shutil.which("switchboard")
    if not binary:
        raise RuntimeError("no switchboard binary: pass `binary`, set SWITCHBOARD_BIN, or put it on the PATH")
    if os.sep in binary:
        binary = os.path.abspath(binary)  # the server runs in its own directory
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="switchboard-test-")
    args = [binary, "serve", "--bind", f"127.0.0.1:{port}", "--store", store or f"sqlite://{workdir}/switchboard.db"]
    if isinstance(manifest, Mapping):
        path = Path(workdir, "manifest.json")
        path.write_text(json.dumps(manifest))
        args += ["--manifest", str(path)]
    elif manifest is not None:
        args += ["--manifest", str(Path(manifest).resolve())]
    log = open(Path(workdir, "switchboard.log"), "w+b")
    proc = subprocess.Popen(args, cwd=workdir, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + timeout
        while not _listening(port):
            if proc.poll() is not None:
                log.seek(0)
                said = log.read().decode(errors="replace").strip()[-2000:]
                raise RuntimeError(f"switchboard exited with {proc.returncode}: {said or '(it said nothing)'}")
            if time.time() > deadline:
                raise RuntimeError(f"switchboard did not listen on {port} within {timeout} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
