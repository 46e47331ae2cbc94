"""Policies written as manifests load back as equal policies."""

from __future__ import annotations

import dataclasses
import io
from ipaddress import ip_network
from pathlib import Path

import pytest
import yaml

from netfence.model.labels import LabelSelector, Operator, Requirement
from netfence.model.policies import Direction, IPBlock, NetworkPolicy, Peer, PolicyPort, PolicyRule
from netfence.model.ports import Protocol
from netfence.output.manifests import policy_manifest, selector_data, write_manifests
from netfence.sources.load import load_inventory

WEB = LabelSelector.from_labels({"app": "web", "tier": "front"})
MIXED = LabelSelector(
    (
        Requirement("app", Operator.IN, ("web",)),
        Requirement("env", Operator.NOT_IN, ("dev", "test")),
        Requirement("team", Operator.EXISTS),
        Requirement("legacy", Operator.DOES_NOT_EXIST),
    )
)

POLICIES = [
    NetworkPolicy("shop", "deny-all", LabelSelector(), frozenset(Direction)),
    NetworkPolicy(
        "shop",
        "web",
        WEB,
        frozenset({Direction.INGRESS}),
        ingress=(
            PolicyRule(),
            PolicyRule(
                peers=(
                    Peer(pod_selector=MIXED),
                    Peer(namespace_selector=LabelSelector()),
                    Peer(pod_selector=WEB, namespace_selector=LabelSelector.from_labels({"env": "prod"})),
                    Peer(ip_block=IPBlock(ip_network("10.0.0.0/8"), (ip_network("10.1.0.0/16"),))),
                ),
                ports=(
                    PolicyPort(Protocol.TCP, 80),
                    PolicyPort(Protocol.UDP, 5000, 5100),
                    PolicyPort(Protocol.SCTP, "metrics"),
                    PolicyPort(Protocol.TCP),
                ),
            ),
        ),
    ),
    NetworkPolicy(
        "shop",
        "egress",
        LabelSelector((Requirement("b", Operator.IN, ("1",)), Requirement("a", Operator.IN, ("2",)))),
        frozenset({Direction.EGRESS}),
        egress=(PolicyRule(peers=(Peer(ip_block=IPBlock(ip_network("fd00::/64"))),), ports=(PolicyPort(Protocol.UDP, 53),)),),
    ),
]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_written_policies_load_back_equal(tmp_path: Path, fmt: str) -> None:
    out = io.StringIO()
    write_manifests(POLICIES, {"app.kubernetes.io/managed-by": "netfence"}, fmt, out)
    path = tmp_path / f"policies.{fmt}"
    path.write_text(out.getvalue())
    loaded = load_inventory([str(path)]).inventory.policies
    by_name = {p.name: dataclasses.replace(p, location=None) for p in loaded}
    assert by_name == {p.name: p for p in POLICIES}


def test_selector_keeps_match_labels_for_leading_sorted_single_values() -> None:
    assert selector_data(LabelSelector()) == {}
    assert selector_data(MIXED) == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    # Out of key order, a second single value stays an expression, so the order survives loading.
    unsorted = LabelSelector((Requirement("b", Operator.IN, ("1",)), Requirement("a", Operator.IN, ("2",))))
    assert selector_data(unsorted) == {
        "matchLabels": {"b": "1"},
        "matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}],
    }


def test_policy_types_are_explicit_and_absent_peers_stay_absent() -> None:
    manifest = policy_manifest(POLICIES[1], {})
    assert "labels" not in manifest["metadata"]
    assert manifest["spec"]["policyTypes"] == ["Ingress"]
    assert manifest["spec"]["ingress"][0] == {}
    assert policy_manifest(POLICIES[0], {})["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_yaml_keys_are_sorted_like_kubectl_get() -> None:
    out = io.StringIO()
    write_manifests(POLICIES[:1], {}, "yaml", out)
    assert out.getvalue().splitlines()[:4] == ["apiVersion: v1", "items:", "- apiVersion: networking.k8s.io/v1", "  kind: NetworkPolicy"]
    assert yaml.safe_load(out.getvalue())["kind"] == "List"
