"""The package builds (sdist, then the wheel from the sdist) and the wheel installs into a fresh
virtual environment. Needs `build` and setuptools>=77 where pytest runs (the `test` extra)."""

import email
import json
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[1]
MODULES = ["__init__.py", "client.py", "errors.py", "security.py", "testing.py", "py.typed"]


def run(*args, cwd=None):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_the_sdist_and_wheel_build_and_the_wheel_installs_into_a_fresh_venv(tmp_path):
    # A copy, so the build leaves nothing in the checkout.
    source = tmp_path / "source"
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*"))
    out = tmp_path / "dist"
    # No isolation: no network, the build backend is the one installed here.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source))
    [sdist] = out.glob("switchboard_sdk-*.tar.gz")
    [wheel] = out.glob("switchboard_sdk-*-py3-none-any.whl")

    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"README.md", "pyproject.toml"} <= names
    assert {f"switchboard_sdk/{m}" for m in MODULES} <= names

    with zipfile.ZipFile(wheel) as whl:
        files = set(whl.namelist())
        [metadata] = [name for name in files if name.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(whl.read(metadata))
    assert {f"switchboard_sdk/{m}" for m in MODULES} <= files
    assert not [f for f in files if f.startswith("tests/")]
    assert meta["Name"] == "switchboard-sdk"
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.9"
    assert [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r] == ["httpx<1,>=0.27"]
    assert "Switchboard" in meta.get_payload()  # the README is the long description

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--disable-pip-version-check", str(wheel))
    # httpx (the one dependency) is not installed there; its directory from this environment comes
    # after the fresh venv's own packages, so the SDK itself can only come from the wheel.
    fresh = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(fresh, "deps-for-test.pth").write_text(str(Path(httpx.__file__).resolve().parents[1]) + "\n")
    check = """
import importlib.metadata, json, sys
import switchboard_sdk, switchboard_sdk.testing
from switchboard_sdk import mint_token, verify_signature
print(json.dumps({
    "version": importlib.metadata.version("switchboard-sdk"),
    "file": switchboard_sdk.__file__,
    "all": sorted(switchboard_sdk.__all__),
    "serve": callable(switchboard_sdk.testing.serve),
    "token": mint_token("s", "alice").count("."),
}))
"""
    seen = json.loads(run(python, "-c", check, cwd=tmp_path))
    assert seen["version"] == "0.1.0"
    assert Path(seen["file"]).resolve().is_relative_to(Path(fresh).resolve())
    assert seen["all"] == ["AsyncSwitchboard", "Switchboard", "SwitchboardError", "mint_token", "verify_signature"]
    assert seen["serve"] is True and seen["token"] == 2
