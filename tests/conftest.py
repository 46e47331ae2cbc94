"""Shared fixtures: small clusters from YAML text (see clusters.py), files in a temporary directory.

Lab tests (marked `lab`) need root, nft and ip, browser tests (marked `browser`) a headless
Chromium; they are skipped here, in one place, otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import find_browser
from clusters import Cluster, to_yaml

from netfence.cli.main import main
from netfence.ir.build import build_ruleset
from netfence.sources.load import load_inventory


def pytest_configure(config: pytest.Config) -> None:
    # Tests press Ctrl-C on the CLI by sending it SIGINT. A shell without job control starts a
    # background command with SIGINT ignored, children inherit an ignored signal, and Python
    # then keeps ignoring it: the CLI under test would never see the Ctrl-C. Give the commands
    # the suite starts a terminal's default, however the suite itself was started.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    can_run_lab = os.geteuid() == 0 and shutil.which("nft") and shutil.which("ip")
    if not can_run_lab:
        skip = pytest.mark.skip(reason="lab tests need root, nft and ip")
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)
    if find_browser() is None:
        skip = pytest.mark.skip(
            reason="browser tests need a headless Chromium: apt-get install chromium-headless-shell "
            "(bash scripts/setup.sh does, as root), or NETFENCE_BROWSER=/path/to/chromium"
        )
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


#: run(*argv) -> (exit status, stdout, stderr) of netfence run in-process.
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def cluster(tmp_path: Path) -> Callable[..., Cluster]:
    """cluster(obj_or_yaml, ...) -> Cluster loaded through the real loader from one file."""

    def make(*objects: dict[str, Any] | str) -> Cluster:
        path = tmp_path / f"cluster-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(to_yaml(*objects))
        inventory = load_inventory([str(path)]).inventory
        return Cluster(inventory, build_ruleset(inventory))

    return make


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """write(name, yaml_text) -> path of a file in the test's temporary directory."""

    def make(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return str(path)

    return make
