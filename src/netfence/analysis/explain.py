"""Each policy in plain words, grouped by namespace."""

from __future__ import annotations

from dataclasses import dataclass

from netfence.ir.types import Ruleset
from netfence.model.admin import AdminPeer, AdminPolicy, AdminRule, AdminSubject
from netfence.model.calico import CalicoPolicy, CalicoRule, EntityRule
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
    #: The tier it is evaluated in and its place there (Calico order, ANP priority).
    tier: str | None = None
    order: float | None = None


def explain_policies(inventory: Inventory, ruleset: Ruleset) -> list[PolicyExplanation]:
    """Every policy, in evaluation order: by tier, then by its place in the tier."""
    subjects: dict[tuple[str, str, str], set[str]] = {}
    place: dict[tuple[str, str, str], tuple[int, int, str, float | None]] = {}
    for direction in Direction:
        for t, tier in enumerate(ruleset.tiers(direction)):
            for i, policy in enumerate(tier.policies):
                key = (str(policy.ref.kind), policy.ref.namespace or "", policy.ref.name)
                subjects.setdefault(key, set()).update(policy.subjects)
                place.setdefault(key, (t, i, tier.name, tier.order))

    def selects(kind: str, namespace: str | None, name: str) -> tuple[str, ...]:
        return tuple(sorted(subjects.get((kind, namespace or "", name), ())))

    items = [_explain(p, selects(str(p.kind), p.namespace, p.name)) for p in inventory.policies]
    items += [_explain_calico(p, selects(str(p.kind), p.namespace, p.name)) for p in inventory.calico_policies]
    items += [_explain_admin(p, selects(str(p.kind), None, p.name)) for p in inventory.admin_policies]
    ordered = []
    for item in items:
        where = place.get((item.kind, item.namespace, item.name))
        tier_name = where[2] if where else item.tier
        position = (where[0], where[1]) if where else (1 << 30, 0)
        ordered.append(
            (
                position,
                PolicyExplanation(
                    item.namespace, item.kind, item.name, item.selects, item.summary, item.directions, tier_name, item.order
                ),
            )
        )
    if not inventory.calico_policies and not inventory.admin_policies:
        return [item for _, item in ordered]  # Kubernetes only: by namespace and name
    return [item for _, item in sorted(ordered, key=lambda kv: kv[0])]


def _explain_calico(policy: CalicoPolicy, selects: tuple[str, ...]) -> PolicyExplanation:
    if policy.namespace is not None:
        who = f"endpoints {policy.selector} in {policy.namespace}"
    else:
        who = f"endpoints {policy.selector}"
        if policy.namespace_selector is not None:
            who += f" in namespaces {policy.namespace_selector}"
    if policy.service_account_selector is not None:
        who += f" running as service accounts {policy.service_account_selector}"
    directions = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        if direction in policy.types:
            rules = policy.rules(direction)
            text = "; ".join(f"[{i}] {_calico_rule(r)}" for i, r in enumerate(rules)) if rules else "no rules"
            directions.append((str(direction), f"{text}; then the rest of tier {policy.tier}"))
    return PolicyExplanation(
        policy.namespace or "", str(policy.kind), policy.name, selects, who, tuple(directions), policy.tier, policy.order
    )


def _calico_rule(rule: CalicoRule) -> str:
    parts = [str(rule.action).lower()]
    if rule.protocol is not None:
        parts.append(str(rule.protocol))
    if rule.not_protocol is not None:
        parts.append(f"not {rule.not_protocol}")
    if rule.icmp is not None:
        parts.append(f"icmp type {rule.icmp.type}" + (f" code {rule.icmp.code}" if rule.icmp.code is not None else ""))
    for word, side in (("from", rule.source), ("to", rule.destination)):
        text = _entity(side)
        if text:
            parts.append(f"{word} {text}")
    return " ".join(parts)


def _entity(side: EntityRule) -> str:
    parts = []
    if side.selector is not None:
        parts.append(f"selector {side.selector}")
    if side.namespace_selector is not None:
        parts.append(f"namespaces {side.namespace_selector}")
    if side.service_accounts is not None:
        if side.service_accounts.names:
            parts.append("service accounts " + ", ".join(side.service_accounts.names))
        if side.service_accounts.selector is not None:
            parts.append(f"service accounts {side.service_accounts.selector}")
    if side.services is not None:
        parts.append(f"service {side.services.namespace}/{side.services.name}")
    if side.nets:
        parts.append("nets " + ", ".join(str(n) for n in side.nets))
    if side.not_nets:
        parts.append("not nets " + ", ".join(str(n) for n in side.not_nets))
    if side.not_selector is not None:
        parts.append(f"not selector {side.not_selector}")
    if side.ports:
        parts.append("ports " + ", ".join(str(p) for p in side.ports))
    if side.not_ports:
        parts.append("not ports " + ", ".join(str(p) for p in side.not_ports))
    return " ".join(parts)


def _explain_admin(policy: AdminPolicy, selects: tuple[str, ...]) -> PolicyExplanation:
    directions = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        rules = policy.rules(direction)
        if rules:
            word = "from" if direction is Direction.INGRESS else "to"
            text = "; ".join(f"[{i}] {_admin_rule(r, word)}" for i, r in enumerate(rules))
            directions.append((str(direction), text + "; anything else goes on to the next tier"))
    order = float(policy.priority) if policy.priority is not None else None
    return PolicyExplanation(
        "", str(policy.kind), policy.name, selects, _subject(policy.subject), tuple(directions), None, order
    )


def _subject(subject: AdminSubject) -> str:
    if subject.namespaces is not None:
        return "every pod in " + ("every namespace" if subject.namespaces.is_empty else f"namespaces {subject.namespaces}")
    assert subject.pods is not None
    return f"pods {subject.pods.pod_selector} in namespaces {subject.pods.namespace_selector}"


def _admin_rule(rule: AdminRule, word: str) -> str:
    named = f' "{rule.name}"' if rule.name else ""
    ports = "all traffic" if rule.ports is None else _join([str(p) for p in rule.ports])
    return f"{str(rule.action).lower()}{named} {ports} {word} " + _join([_admin_peer(p) for p in rule.peers])


def _admin_peer(peer: AdminPeer) -> str:
    if peer.namespaces is not None or peer.pods is not None:
        return _subject(AdminSubject(peer.namespaces, peer.pods))
    if peer.networks:
        return "networks " + ", ".join(str(n) for n in peer.networks)
    if peer.nodes is not None:
        return f"nodes {peer.nodes}"
    if peer.domain_names:
        return "domains " + ", ".join(peer.domain_names)
    return "a peer netfence does not know (fails closed)"


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
