"""A live Switchboard for your tests: the binary, started on a free loopback port.

    from switchboard_sdk.testing import serve

    with serve("switchboard.json", env={"MY_APP_JWT_SECRET": "test"}) as url:
        sb = Switchboard(url, api_key, "my_app")
        ...

The binary is `binary`, else `$SWITCHBOARD_BIN`, else `switchboard` on the PATH. Its store is a
fresh SQLite file unless you name one; it is killed when the block ends.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional, Union


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    manifest: Optional[Union[str, Path]],
    *,
    env: Optional[Dict[str, str]] = None,
    binary: Optional[str] = None,
    port: Optional[int] = None,
    store: Optional[str] = None,
    timeout: float = 20.0,
) -> Iterator[str]:
    """Runs `switchboard serve` for `manifest` (the demo app when `None`) and yields its base URL."""
    binary = binary or os.environ.get("SWITCHBOARD_BIN") or shutil.which("switchboard")
    if not binary:
        raise RuntimeError("no switchboard binary: pass `binary`, set SWITCHBOARD_BIN, or put it on the PATH")
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="switchboard-test-")
    args = [binary, "serve", "--bind", f"127.0.0.1:{port}", "--store", store or f"sqlite://{workdir}/switchboard.db"]
    if manifest is not None:
        args += ["--manifest", str(Path(manifest).resolve())]
    proc = subprocess.Popen(args, cwd=workdir, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if proc.poll() is not None:
                raise RuntimeError(f"switchboard exited with {proc.returncode}; run `{' '.join(args)}` to see why")
            if time.time() > deadline:
                raise RuntimeError(f"switchboard did not listen on {port} within {timeout} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
