"""Lab fixtures: a unique lab name per test, removed afterwards whatever the test did.

Tests clean only their own lab (`netfence-<name>-*`): other kernel tests may have netfence
namespaces of their own up at the same time.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from netfence.lab.clean import clean
from netfence.lab.netns import list_netns
from netfence.lab.plan import lab_prefix
from netfence.lab.state import state_path

_COUNTER = itertools.count()


@pytest.fixture
def lab_name() -> Iterator[str]:
    """A lab name no other test (or test run) uses; the lab is removed at teardown."""
    name = f"t{os.getpid()}n{next(_COUNTER)}"
    try:
        yield name
    finally:
        clean(name)
        assert list_netns(lab_prefix(name)) == []
        assert not state_path(name).exists()
