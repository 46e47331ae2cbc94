"""Policies written back as Kubernetes manifests, for `kubectl apply -f -`, and the notes on them.

The manifests are what `sources/` reads: loading them gives back equal NetworkPolicy values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from netfence.analysis.isolate import (
    NAMESPACE_NODES_POLICY_NAME,
    STACK_NODES_POLICY_NAME,
    GroupBy,
    Isolation,
)
from netfence.model.labels import LabelSelector, Operator
from netfence.model.policies import Direction, NetworkPolicy, Peer, PolicyPort, PolicyRule
from netfence.output.render import dump

#: Notes name at most this many pods; the rest are counted.
NOTE_LIMIT = 5


def write_manifests(
    policies: Sequence[NetworkPolicy], labels: Mapping[str, str], fmt: str, out: IO[str]
) -> None:
    """One `v1 List` of the policies, as yaml or json, keys sorted (as `kubectl get -o yaml`)."""
    dump(manifest_list(policies, labels), fmt, out)


def manifest_list(policies: Sequence[NetworkPolicy], labels: Mapping[str, str]) -> dict[str, Any]:
    return v1_list([policy_manifest(p, labels) for p in policies])


def v1_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A `v1 List` of objects, as `kubectl apply -f` takes it."""
    return {"apiVersion": "v1", "kind": "List", "items": items}


def object_metadata(name: str, namespace: str | None, labels: Mapping[str, str]) -> dict[str, Any]:
    """A namespaced object's metadata: name, namespace and, when given, labels."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return metadata


def policy_manifest(policy: NetworkPolicy, labels: Mapping[str, str]) -> dict[str, Any]:
    """A networking.k8s.io/v1 NetworkPolicy with explicit policyTypes."""
    metadata = object_metadata(policy.name, policy.namespace, labels)
    spec: dict[str, Any] = {
        "podSelector": selector_data(policy.pod_selector),
        "policyTypes": [d.value.capitalize() for d in Direction if d in policy.policy_types],
    }
    if policy.ingress:
        spec["ingress"] = [_rule(r, "from") for r in policy.ingress]
    if policy.egress:
        spec["egress"] = [_rule(r, "to") for r in policy.egress]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def selector_data(selector: LabelSelector) -> dict[str, Any]:
    """matchLabels for the leading single-value `In` requirements in key order, matchExpressions
    for the rest: the order the loader builds requirements in, so a round trip keeps them equal."""
    match_labels: dict[str, str] = {}
    rest = list(selector.requirements)
    while rest:
        first = rest[0]
        if first.operator is not Operator.IN or len(first.values) != 1:
            break
        if match_labels and first.key <= max(match_labels):
            break
        match_labels[first.key] = first.values[0]
        rest.pop(0)
    data: dict[str, Any] = {}
    if match_labels:
        data["matchLabels"] = match_labels
    if rest:
        expressions = []
        for r in rest:
            entry: dict[str, Any] = {"key": r.key, "operator": str(r.operator)}
            if r.operator in (Operator.IN, Operator.NOT_IN):
                entry["values"] = list(r.values)
            expressions.append(entry)
        data["matchExpressions"] = expressions
    return data


def _rule(rule: PolicyRule, peers_field: str) -> dict[str, Any]:
    # An absent `from`/`to` or `ports` means all; the model keeps that as None.
    data: dict[str, Any] = {}
    if rule.peers is not None:
        data[peers_field] = [_peer(p) for p in rule.peers]
    if rule.ports is not None:
        data["ports"] = [_port(p) for p in rule.ports]
    return data


def _peer(peer: Peer) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if peer.ip_block is not None:
        block: dict[str, Any] = {"cidr": str(peer.ip_block.cidr)}
        if peer.ip_block.excepts:
            block["except"] = [str(e) for e in peer.ip_block.excepts]
        data["ipBlock"] = block
    if peer.pod_selector is not None:
        data["podSelector"] = selector_data(peer.pod_selector)
    if peer.namespace_selector is not None:
        data["namespaceSelector"] = selector_data(peer.namespace_selector)
    return data


def _port(port: PolicyPort) -> dict[str, Any]:
    data: dict[str, Any] = {"protocol": str(port.protocol)}
    if port.port is not None:
        data["port"] = port.port
    if port.end_port is not None:
        data["endPort"] = port.end_port
    return data


# --- notes ------------------------------------------------------------------------------------


def isolation_notes(isolation: Isolation) -> list[str]:
    """What the policies leave out and why, one line each, for stderr."""
    key = isolation.key
    notes: list[str] = []
    if isolation.by is GroupBy.NAMESPACE_LABEL:
        if not isolation.policies and not isolation.exempt:
            notes.append(f"warning: no namespace carries label {key}; nothing to isolate")
        if isolation.unlabelled:
            count = len(isolation.unlabelled)
            notes.append(
                f"note: {count} namespace{'s' if count != 1 else ''} without label {key} left unisolated "
                f"(no policy generated; their pods cannot reach isolated namespaces): "
                + ", ".join(isolation.unlabelled)
            )
        if isolation.system is not None:
            if isolation.exempt:
                notes.append(
                    f"note: namespaces of system project {key}={isolation.system} left unisolated "
                    f"and admitted by every project: " + ", ".join(isolation.exempt)
                )
            else:
                notes.append(f"warning: --system-project: no namespace carries {key}={isolation.system}")
        nodes_policy = NAMESPACE_NODES_POLICY_NAME
    else:
        if not isolation.policies:
            notes.append(f"warning: no pod carries label {key}; nothing to isolate")
        if isolation.unlabelled:
            notes.append(
                f"note: {_pods(isolation.unlabelled)} without label {key} left unisolated "
                f"(no policy selects them; no stack admits them)"
            )
        nodes_policy = STACK_NODES_POLICY_NAME
    if isolation.host_network:
        notes.append(
            f"note: {_pods(isolation.host_network)} with hostNetwork not isolated "
            f"(NetworkPolicy does not select hostNetwork pods)"
        )
    if isolation.nodes_requested and isolation.policies and not isolation.node_addresses:
        notes.append(
            f"note: no node addresses in the input (Node status.addresses, hostNetwork pod IPs): "
            f"{nodes_policy} not generated"
        )
    return notes


def _pods(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:NOTE_LIMIT])
    more = f", and {len(ids) - NOTE_LIMIT} more" if len(ids) > NOTE_LIMIT else ""
    return f"{len(ids)} pod{'s' if len(ids) != 1 else ''} ({shown}{more})"
