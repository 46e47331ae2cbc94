"""The layering in pyproject.toml holds: imports point down, yaml/pydantic stay in sources,
rich stays in output and cli. The analyzer and the compiler reading only the IR depends on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_are_kept() -> None:
    root = Path(__file__).resolve().parents[1]
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a test dependency"
    proc = subprocess.run([lint, "--no-cache"], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_source_type_checks_strictly() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"], cwd=root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
