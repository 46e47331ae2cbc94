"""Make `strategies` (next to this file) importable by the property tests in any import mode.

tests/ is not a package, so `from tests.property.strategies import ...` is not available.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
