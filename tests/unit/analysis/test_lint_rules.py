"""Lint checks about rules that never act: rule-shadowed, rule-redundant, rules-ignored."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

from netfence.analysis.lint import Severity

World = Callable[..., Cluster]


def calico(*rules: str) -> str:
    body = "\n".join(f"      - {r}" for r in rules)
    return f"""
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {{name: c, namespace: shop}}
    spec:
      selector: app == 'db'
      ingress:
{body}
    """


# --- rule-shadowed ------------------------------------------------------------------------------------


def test_an_allow_behind_a_deny_of_everything_is_shadowed(cluster: World) -> None:
    policy = calico("{action: Deny}", "{action: Allow, source: {selector: app == 'web'}, protocol: TCP}")
    found = findings_of(cluster, policy, code="rule-shadowed")
    assert [(f.object, f.field, f.severity) for f in found] == [
        ("CalicoNetworkPolicy shop/c", ("spec", "ingress", 1), Severity.WARNING)
    ]
    assert found[0].message == (
        "ingress[1] (Allow) never applies: ingress[0] (Deny) comes first and matches every flow it matches"
    )


def test_a_deny_of_other_peers_does_not_shadow(cluster: World) -> None:
    policy = calico(
        "{action: Deny, source: {selector: app == 'toolbox'}}", "{action: Allow, source: {selector: app == 'web'}}"
    )
    assert findings_of(cluster, policy, code="rule-shadowed") == []


def test_a_deny_of_some_ports_does_not_shadow_an_allow_of_more(cluster: World) -> None:
    policy = calico(
        "{action: Deny, protocol: TCP, destination: {ports: ['5000:6000']}}",
        "{action: Allow, protocol: TCP, destination: {ports: [5432, 7000]}}",
    )
    assert findings_of(cluster, policy, code="rule-shadowed") == []
    covered = calico(
        "{action: Deny, protocol: TCP, destination: {ports: ['5000:6000']}}",
        "{action: Allow, protocol: TCP, destination: {ports: [5432, postgres]}}",
    )
    assert len(findings_of(cluster, covered, code="rule-shadowed")) == 1


def test_an_admin_pass_shadows_a_lower_priority_deny(cluster: World) -> None:
    def anp(name: str, priority: int, action: str) -> str:
        return f"""
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {{name: {name}}}
        spec:
          priority: {priority}
          subject: {{namespaces: {{}}}}
          ingress:
          - {{action: {action}, from: [{{namespaces: {{matchLabels: {{team: ops}}}}}}]}}
        """

    found = findings_of(cluster, anp("pass-ops", 10, "Pass"), anp("deny-ops", 20, "Deny"), code="rule-shadowed")
    assert [(f.object, f.message) for f in found] == [
        (
            "AdminNetworkPolicy deny-ops",
            "ingress[0] (Deny) never applies: AdminNetworkPolicy pass-ops ingress[0] (Pass) comes first and "
            "matches every flow it matches",
        )
    ]


def test_a_deny_behind_a_pass_of_its_tier_does_not_shadow_later_tiers(cluster: World) -> None:
    # Flows from ops Pass the admin tier before deny-all is reached, so the NetworkPolicy decides.
    anps = """
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {name: pass-ops}
    spec:
      priority: 10
      subject: {namespaces: {}}
      ingress: [{action: Pass, from: [{namespaces: {matchLabels: {team: ops}}}]}]
    ---
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {name: deny-all}
    spec:
      priority: 20
      subject: {namespaces: {}}
      ingress: [{action: Deny, from: [{namespaces: {}}]}]
    """
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: from-ops, namespace: shop}
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {team: ops}}}]}]
    """
    assert findings_of(cluster, anps, policy, code="rule-shadowed") == []
    without_pass = anps.split("---")[1]
    found = findings_of(cluster, without_pass, policy, code="rule-shadowed")
    assert [(f.object, f.message) for f in found] == [
        (
            "NetworkPolicy shop/from-ops",
            "ingress[0] (Allow) never applies: AdminNetworkPolicy deny-all ingress[0] (Deny) comes first and "
            "matches every flow it matches",
        )
    ]


# --- rule-redundant -----------------------------------------------------------------------------------


def netpol_rules(*rules: str) -> str:
    body = "\n".join(f"      - {r}" for r in rules)
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: db-in, namespace: shop}}
    spec:
      podSelector: {{matchLabels: {{app: db}}}}
      ingress:
{body}
    """


def test_a_networkpolicy_rule_inside_another_rule_of_the_policy_is_redundant(cluster: World) -> None:
    policy = netpol_rules(
        "{from: [{podSelector: {}}], ports: [{port: 5432}]}",
        "{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: postgres}]}",
    )
    found = findings_of(cluster, policy, code="rule-redundant")
    assert [(f.field, f.severity, f.message) for f in found] == [
        (
            ("spec", "ingress", 1),
            Severity.INFO,
            "ingress[1] is redundant: ingress[0] (Allow) comes first and matches every flow it matches",
        )
    ]


def test_a_rule_admitting_more_ports_is_not_redundant(cluster: World) -> None:
    policy = netpol_rules(
        "{from: [{podSelector: {}}], ports: [{port: 5432}]}",
        "{from: [{podSelector: {matchLabels: {app: web}}}]}",
    )
    assert findings_of(cluster, policy, code="rule-redundant") == []


def test_rules_of_two_networkpolicies_are_not_compared(cluster: World) -> None:
    other = netpol_rules("{from: [{podSelector: {}}]}").replace("name: db-in", "name: db-in-all")
    policy = netpol_rules("{from: [{podSelector: {matchLabels: {app: web}}}]}")
    assert findings_of(cluster, other, policy, code="rule-redundant") == []


# --- rules-ignored ------------------------------------------------------------------------------------


def test_egress_rules_of_an_ingress_only_policy_are_an_error(cluster: World) -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: shop}
    spec:
      podSelector: {}
      policyTypes: [Ingress]
      egress:
      - to: [{podSelector: {}}]
    """
    found = findings_of(cluster, policy, code="rules-ignored")
    assert [(f.severity, f.field, f.message) for f in found] == [
        (Severity.ERROR, ("spec", "policyTypes"), "1 egress rule is ignored: policyTypes [Ingress] leaves Egress out")
    ]


def test_omitted_policy_types_ignore_nothing(cluster: World) -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: shop}
    spec:
      podSelector: {}
      egress:
      - to: [{podSelector: {}}]
    """
    assert findings_of(cluster, policy, code="rules-ignored") == []
