"""Kubernetes objects for agent tests, as the API server stores them, and a polling wait."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from netfence.sources.documents import Document, Source
from netfence.sources.kube_api import WatchSettings
from netfence.sources.snapshot import Snapshot

#: Fast retries for tests: the shapes of production settings, the delays of a test.
FAST = WatchSettings(page=500, timeout=(30, 30), connect_timeout=2.0, read_timeout=10.0,
                     backoff_base=0.02, backoff_cap=0.2, absent_retry=0.5)  # fmt: skip


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}  # fmt: skip


def pod(ref: str, ip: str, node: str = "node-a", port: int = 80, **labels: str) -> dict[str, Any]:
    ns, _, name = ref.partition("/")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def netpol(ref: str, selector: dict[str, str], sources: dict[str, str] | None, port: int = 80) -> dict[str, Any]:
    """Ingress to pods matching `selector` from pods matching `sources` (None: from nowhere) on TCP `port`."""
    ns, _, name = ref.partition("/")
    ingress = [] if sources is None else [{"from": [{"podSelector": {"matchLabels": sources}}], "ports": [{"port": port}]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def snapshot(*objects: dict[str, Any]) -> Snapshot:
    """Objects as a watched source hands them over."""
    return Snapshot([Document(Source(f"test:{i}", ""), 0, None, json.loads(json.dumps(o))) for i, o in enumerate(objects)])
