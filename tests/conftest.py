"""Shared fixtures: build small clusters from YAML text and ask them questions.

Lab tests (marked `lab`) need root, nft and ip; they are skipped here, in one place, otherwise.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, Party, Verdict, evaluate
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory, parse_address
from netfence.model.ports import parse_flow_port
from netfence.sources.load import load_inventory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    can_run_lab = os.geteuid() == 0 and shutil.which("nft") and shutil.which("ip")
    if can_run_lab:
        return
    skip = pytest.mark.skip(reason="lab tests need root, nft and ip")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


def pod(
    namespace: str,
    name: str,
    labels: dict[str, str] | None = None,
    ip: str | None = None,
    ports: Iterable[tuple[str | None, int, str]] = (("http", 80, "TCP"),),
    **spec: Any,
) -> dict[str, Any]:
    """A Pod object as the API prints it; `ports` are (name, number, protocol)."""
    container_ports = []
    for port_name, number, protocol in ports:
        entry: dict[str, Any] = {"containerPort": number, "protocol": protocol}
        if port_name:
            entry["name"] = port_name
        container_ports.append(entry)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "nginx", "ports": container_ports}], **spec},
        "status": {"phase": "Running"},
    }
    if ip:
        body["status"]["podIP"] = ip
    return body


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


@dataclass
class Cluster:
    inventory: Inventory
    ruleset: Ruleset

    def party(self, text: str) -> Party:
        address = parse_address(text)
        if address is not None:
            found = self.inventory.pod_by_ip(address)
            endpoint = self.ruleset.endpoint(found.id) if found else None
            return Party.of(endpoint) if endpoint else Party.outside(address)
        endpoint = self.ruleset.endpoint(text)  # type: ignore[arg-type]
        if endpoint is not None:
            return Party.of(endpoint)
        pod = self.inventory.pod(text)  # type: ignore[arg-type]
        assert pod is not None, f"no pod {text}"
        return Party(text, None, pod.ips)

    def verdict(self, source: str, destination: str, port: str = "80/TCP") -> Verdict:
        flow = Flow(self.party(source), self.party(destination), parse_flow_port(port))
        return evaluate(self.ruleset, flow)

    def allowed(self, source: str, destination: str, port: str = "80/TCP") -> bool:
        """The per-flow verdict, checked against the matrix engine whenever both sides are pods."""
        verdict = self.verdict(source, destination, port)
        src, dst = self.ruleset.endpoint(source), self.ruleset.endpoint(destination)  # type: ignore[arg-type]
        if src is not None and dst is not None:
            matrix = compute_matrix(self.ruleset, [parse_flow_port(port)], [src, dst] if src != dst else [src])
            j = 1 if src != dst else 0
            assert bool(matrix.allowed[0, 0, j]) == verdict.allowed, "matrix and evaluator disagree"
        return verdict.allowed


def to_yaml(*objects: dict[str, Any] | str) -> str:
    parts = [textwrap.dedent(o) if isinstance(o, str) else yaml.safe_dump(o, sort_keys=False) for o in objects]
    return "\n---\n".join(p.strip("\n") for p in parts) + "\n"


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
