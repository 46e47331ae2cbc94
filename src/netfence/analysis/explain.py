"""Each policy in plain words, grouped by namespace."""

from __future__ import annotations

from dataclasses import dataclass

from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory
from netfence.model.labels import LabelSelector
from netfence.model.policies import Direction, NetworkPolicy, Peer, PolicyPort, PolicyRule


@dataclass(frozen=True)
class PolicyExplanation:
    namespace: str
    kind: str
    name: str
    #: `namespace/name` of every endpoint the policy applies to.
    selects: tuple[str, ...]
    summary: str
    #: One sentence per direction the policy affects.
    directions: tuple[tuple[str, str], ...]


def explain_policies(inventory: Inventory, ruleset: Ruleset) -> list[PolicyExplanation]:
    subjects: dict[tuple[str, str], set[str]] = {}
    for direction in Direction:
        for tier in ruleset.tiers(direction):
            for policy in tier.policies:
                key = (policy.ref.namespace or "", policy.ref.name)
                subjects.setdefault(key, set()).update(policy.subjects)
    return [_explain(p, tuple(sorted(subjects.get((p.namespace, p.name), ())))) for p in inventory.policies]


def _explain(policy: NetworkPolicy, selects: tuple[str, ...]) -> PolicyExplanation:
    who = _pods(policy.pod_selector, policy.namespace)
    directions = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        if direction in policy.policy_types:
            directions.append((str(direction), _direction(policy.rules(direction), direction, policy.namespace)))
    return PolicyExplanation(policy.namespace, str(policy.kind), policy.name, selects, who, tuple(directions))


def _direction(rules: tuple[PolicyRule, ...], direction: Direction, namespace: str) -> str:
    if not rules:
        return f"all {direction} is denied"
    word = "from" if direction is Direction.INGRESS else "to"
    parts = []
    for rule in rules:
        what = "all traffic" if rule.ports is None else _join([_port(p) for p in rule.ports])
        if rule.peers is None:
            parts.append(f"accept {what} {word} anywhere")
        else:
            parts.append(f"accept {what} {word} " + _join([_peer(p, namespace) for p in rule.peers]))
    if any(r.peers is None and r.ports is None for r in rules):
        return "; ".join(parts) + f" (all {direction} is allowed)"
    return "; ".join(parts) + f"; all other {direction} is denied"


def _pods(selector: LabelSelector, namespace: str) -> str:
    if selector.is_empty:
        return f"every pod in {namespace}"
    return f"pods {selector} in {namespace}"


def _peer(peer: Peer, namespace: str) -> str:
    if peer.ip_block is not None:
        return f"addresses {peer.ip_block}"
    if peer.namespace_selector is None:
        return _pods(peer.pod_selector or LabelSelector(), namespace)
    if peer.namespace_selector.is_empty:
        where = "every namespace"
    else:
        where = f"namespaces {peer.namespace_selector}"
    if peer.pod_selector is None or peer.pod_selector.is_empty:
        return f"every pod in {where}"
    return f"pods {peer.pod_selector} in {where}"


def _port(port: PolicyPort) -> str:
    if port.port is None:
        return f"all {port.protocol} ports"
    if isinstance(port.port, str):
        return f"{port.protocol} port named {port.port}"
    if port.end_port is not None:
        return f"{port.protocol} {port.port}-{port.end_port}"
    return f"{port.protocol} {port.port}"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
