"""What the seed examples' end-to-end tests share: the switchboard binary, and their backend."""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def switchboard_bin() -> str:
    """The binary `cargo test` builds, or $SWITCHBOARD_BIN."""
    return os.environ.get("SWITCHBOARD_BIN", str(ROOT / "target" / "release" / "switchboard"))


@pytest.fixture(scope="module")
def backend(request):
    """The `app.py` beside the test, loaded under a name of its own (every example has one),
    without building the module-level app it makes when run for real."""
    here = request.path.parent
    os.environ["EXAMPLE_NO_APP"] = "1"
    spec = importlib.util.spec_from_file_location(f"{here.name.replace('-', '_')}_app", here / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
