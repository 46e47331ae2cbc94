"""Small clusters for tests: Kubernetes objects as the API prints them, loaded through the real
loader, and questions asked of them (each verdict cross-checked against the matrix engine)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, Party, Verdict, evaluate
from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory, parse_address
from netfence.model.ports import parse_flow_port


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
