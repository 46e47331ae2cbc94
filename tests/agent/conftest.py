"""Agent fixtures: the in-process API server, objects to put in it, a kubernetes client Configuration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_apiserver import FakeApiServer
from kubernetes import client



@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def configuration(apiserver: FakeApiServer) -> Any:
    settings = client.Configuration()
    settings.host = apiserver.url
    return settings
