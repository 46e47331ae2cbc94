"""Lint checks about evaluation order and declarations: tier-order, admin-priority-overlap,
calico-types-omitted (this one needs the objects' apiVersion: tests/cli/test_lint.py)."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

World = Callable[..., Cluster]

ANP = """
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: admin}
spec:
  priority: 10
  subject: {namespaces: {}}
  ingress: [{action: Pass, from: [{namespaces: {}}]}]
"""
BANP = """
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
"""


def tier(order: str | None) -> str:
    spec = f"{{order: {order}}}" if order is not None else "{}"
    return f"""
    apiVersion: projectcalico.org/v3
    kind: Tier
    metadata: {{name: security}}
    spec: {spec}
    """


# --- tier-order -----------------------------------------------------------------------------------------


def test_a_tier_before_the_admin_tier_is_reported_when_admin_policies_exist(cluster: World) -> None:
    found = findings_of(cluster, ANP, tier("100"), code="tier-order")
    assert [(f.object, f.field) for f in found] == [("Tier security", ("spec", "order"))]
    assert found[0].message.startswith("order 100 runs this tier before the AdminNetworkPolicies")


def test_a_tier_without_order_is_reported_when_a_baseline_exists(cluster: World) -> None:
    found = findings_of(cluster, BANP, tier(None), code="tier-order")
    assert [f.message for f in found] == [
        "without an order, it runs after the BaselineAdminNetworkPolicy (tier kube-baseline, order 10,000,000), "
        "so it only sees flows the baseline left undecided"
    ]


def test_a_tier_between_the_admin_tiers_is_not_reported(cluster: World) -> None:
    assert findings_of(cluster, ANP, BANP, tier("2000"), code="tier-order") == []


def test_tier_order_does_not_matter_without_admin_policies(cluster: World) -> None:
    assert findings_of(cluster, tier("100"), code="tier-order") == []


# --- admin-priority-overlap -------------------------------------------------------------------------------


def anp(name: str, priority: int, action: str, team: str = "ops") -> str:
    return f"""
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {{name: {name}}}
    spec:
      priority: {priority}
      subject: {{namespaces: {{matchLabels: {{team: shop}}}}}}
      ingress:
      - {{action: {action}, from: [{{namespaces: {{matchLabels: {{team: {team}}}}}}}]}}
    """


def test_two_admin_policies_with_one_priority_and_conflicting_rules_are_reported(cluster: World) -> None:
    found = findings_of(cluster, anp("allow-ops", 20, "Allow"), anp("deny-ops", 20, "Deny"), code="admin-priority-overlap")
    assert [(f.object, f.field) for f in found] == [("AdminNetworkPolicy deny-ops", ("spec", "priority"))]
    assert found[0].message.startswith("priority 20 is also AdminNetworkPolicy allow-ops's; both select shop/")
    assert "which one decides is undefined by the API" in found[0].message


def test_different_priorities_are_not_reported(cluster: World) -> None:
    found = findings_of(cluster, anp("allow-ops", 20, "Allow"), anp("deny-ops", 21, "Deny"), code="admin-priority-overlap")
    assert found == []


def test_one_priority_without_a_common_peer_is_not_reported(cluster: World) -> None:
    found = findings_of(
        cluster, anp("allow-ops", 20, "Allow"), anp("deny-qa", 20, "Deny", team="shop"), code="admin-priority-overlap"
    )
    assert found == []
