"""Analysis results as plain JSON-ready data: the stable machine-readable contract."""

from __future__ import annotations

from typing import Any

from netfence.analysis.explain import PolicyExplanation
from netfence.analysis.verdict import Reason, SideVerdict, Verdict
from netfence.ir.types import RuleRef
from netfence.model.ports import FlowPort


def flow_port_data(port: FlowPort) -> dict[str, Any]:
    return {"port": port.port, "protocol": str(port.protocol)}


def rule_ref_data(ref: RuleRef) -> dict[str, Any]:
    """Where a rule comes from, as the JSON outputs name it."""
    return {
        "kind": str(ref.policy.kind),
        "namespace": ref.policy.namespace,
        "name": ref.policy.name,
        "direction": str(ref.direction),
        "index": ref.index,
        "ruleName": ref.rule_name,
    }


def side_data(side: SideVerdict) -> dict[str, Any]:
    rule = None
    if side.rule is not None:
        rule = {
            **rule_ref_data(side.rule),
            "action": "allow" if side.allowed else "deny",
            "peer": side.peer_index,
            "port": side.port_index,
        }
    return {
        "endpoint": side.endpoint,
        "allowed": side.allowed,
        "reason": str(side.reason),
        "tier": side.tier,
        "isolated": side.reason in (Reason.RULE, Reason.ISOLATED) or bool(side.policies),
        "policies": [str(p) for p in side.policies],
        "rule": rule,
    }


def verdict_data(verdict: Verdict) -> dict[str, Any]:
    flow = verdict.flow
    return {
        "from": flow.source.label,
        "to": flow.destination.label,
        **flow_port_data(flow.port),
        "allowed": verdict.allowed,
        "egress": side_data(verdict.egress),
        "ingress": side_data(verdict.ingress),
    }


def explanation_data(item: PolicyExplanation) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "namespace": item.namespace,
        "name": item.name,
        "tier": item.tier,
        "order": item.order,
        "appliesTo": item.summary,
        "selects": list(item.selects),
        **{direction: text for direction, text in item.directions},
    }
