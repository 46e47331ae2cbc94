"""Make the helpers next to this file (cluster_strategies, differential) importable by the tests
here and by bench/fuzz.py, in any import mode (tests/ is not a package)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
