"""Lint checks about what selectors match: selects-nothing, peer-matches-nothing, split-peers,
namespace-label-as-pod-label. Each with the smallest YAML that triggers it and one that does not."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import SHOP, findings_of

from netfence.analysis.lint import Severity, lint

World = Callable[..., Cluster]


def netpol(spec: str, name: str = "p", namespace: str = "shop") -> str:
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: {name}, namespace: {namespace}}}
    spec:
    {spec}
    """


# --- selects-nothing ------------------------------------------------------------------------------


def test_a_policy_whose_pod_selector_matches_no_pod_is_reported(cluster: World) -> None:
    found = findings_of(cluster, netpol("  podSelector: {matchLabels: {app: shop-web}}"), code="selects-nothing")
    assert [(f.object, f.severity, f.message) for f in found] == [
        ("NetworkPolicy shop/p", Severity.WARNING, "podSelector app=shop-web selects no pod in namespace shop")
    ]
    assert found[0].field == ("spec", "podSelector")


def test_a_policy_in_a_namespace_without_pods_says_so(cluster: World) -> None:
    found = findings_of(cluster, netpol("  podSelector: {}", namespace="empty"), code="selects-nothing")
    assert found[0].message == "podSelector (all) selects no pod in namespace empty (namespace empty has no pods)"


def test_a_policy_selecting_a_pod_is_not_reported(cluster: World) -> None:
    assert findings_of(cluster, netpol("  podSelector: {matchLabels: {app: web}}"), code="selects-nothing") == []


def test_a_calico_selector_selecting_nothing_is_reported(cluster: World) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: g}
    spec: {selector: app == 'nope', types: [Ingress]}
    """
    found = findings_of(cluster, gnp, code="selects-nothing")
    assert [f.message for f in found] == ["selector app == 'nope' selects no endpoint"]


def test_without_pods_the_checks_against_pods_do_not_run_and_say_so(cluster: World) -> None:
    loaded = cluster(netpol("  podSelector: {matchLabels: {app: web}}"))
    found = lint(loaded.inventory, loaded.ruleset)
    assert [f.code for f in found] == ["no-pods"]
    assert found[0].severity is Severity.INFO
    assert "selects-nothing" in found[0].message


# --- peer-matches-nothing -------------------------------------------------------------------------


def test_a_pod_selector_peer_matching_no_pod_is_reported_at_the_peer(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {matchLabels: {app: db}}
      ingress:
      - from:
        - podSelector: {matchLabels: {app: web}}
        - podSelector: {matchLabels: {app: api}}"""
    )
    found = findings_of(cluster, policy, code="peer-matches-nothing")
    assert [f.message for f in found] == [
        "ingress[0].from[1] matches no pod: podSelector app=api matches no pod in namespace shop"
    ]
    assert found[0].field == ("spec", "ingress", 0, "from", 1)


def test_a_namespace_selector_matching_no_namespace_is_named(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {}
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {team: payments}}"""
    )
    found = findings_of(cluster, policy, code="peer-matches-nothing")
    assert [f.message for f in found] == [
        "ingress[0].from[0] matches no pod: namespaceSelector team=payments matches no namespace"
    ]


def test_peers_that_match_pods_and_ip_blocks_are_not_reported(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {}
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {team: ops}}
        - ipBlock: {cidr: 192.0.2.0/24}"""
    )
    assert findings_of(cluster, policy, code="peer-matches-nothing") == []


def test_a_calico_rule_side_matching_nothing_is_reported(cluster: World) -> None:
    policy = """
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {name: c, namespace: shop}
    spec:
      selector: app == 'db'
      ingress:
      - action: Allow
        source: {selector: app == 'toolbox'}
    """
    found = findings_of(cluster, policy, code="peer-matches-nothing")
    # A plain selector in a namespaced policy sees its own namespace only; toolbox runs in ops.
    assert [f.message for f in found] == [
        "ingress[0].source (selector app == 'toolbox') matches no endpoint or network set"
    ]
    assert found[0].object == "CalicoNetworkPolicy shop/c"


def test_an_admin_network_policy_peer_matching_no_pod_is_reported(cluster: World) -> None:
    anp = """
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {name: a}
    spec:
      priority: 10
      subject: {namespaces: {}}
      ingress:
      - {action: Deny, from: [{namespaces: {matchLabels: {team: ops}}}, {namespaces: {matchLabels: {team: qa}}}]}
    """
    found = findings_of(cluster, anp, code="peer-matches-nothing")
    assert [(f.object, f.message) for f in found] == [("AdminNetworkPolicy a", "ingress[0].from[1] matches no pod")]


# --- split-peers ------------------------------------------------------------------------------------

INGRESS_CONTROLLER = """
apiVersion: v1
kind: Namespace
metadata: {name: ingress-nginx, labels: {role: ingress}}
---
apiVersion: v1
kind: Pod
metadata: {name: controller, namespace: ingress-nginx, labels: {app: controller}}
spec: {containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.244.9.10}
"""


def test_namespace_and_pod_selector_as_two_peers_is_reported_with_the_evidence(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {matchLabels: {app: web}}
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {role: ingress}}
        - podSelector: {matchLabels: {app: controller}}"""
    )
    found = findings_of(cluster, INGRESS_CONTROLLER, policy, code="split-peers")
    assert len(found) == 1
    assert found[0].field == ("spec", "ingress", 0, "from", 1)
    assert found[0].message.startswith(
        "ingress[0].from[0] and from[1] are two peers (either admits): every pod of the namespaces matching "
        "role=ingress, and pods app=controller of namespace shop;"
    )
    assert found[0].message.endswith(
        "no pod of shop matches the podSelector, but one in the selected namespaces does "
        "(ingress-nginx/controller): one peer was likely meant"
    )
    assert "remove the `-`" in found[0].hint


def test_the_pod_selector_first_is_the_same_trap(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {}
      egress:
      - to:
        - podSelector: {matchLabels: {app: controller}}
        - namespaceSelector: {matchLabels: {role: ingress}}"""
    )
    found = findings_of(cluster, INGRESS_CONTROLLER, policy, code="split-peers")
    assert [f.field for f in found] == [("spec", "egress", 0, "to", 0)]


def test_both_selectors_in_one_peer_are_not_reported(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {matchLabels: {app: web}}
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {role: ingress}}
          podSelector: {matchLabels: {app: controller}}"""
    )
    assert findings_of(cluster, INGRESS_CONTROLLER, policy, code="split-peers") == []


def test_two_namespace_selectors_are_not_the_trap(cluster: World) -> None:
    policy = netpol(
        """  podSelector: {}
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {team: ops}}
        - namespaceSelector: {matchLabels: {role: ingress}}"""
    )
    assert findings_of(cluster, INGRESS_CONTROLLER, policy, code="split-peers") == []


# --- namespace-label-as-pod-label ---------------------------------------------------------------------

SHOP_WITH_LABELLED_NAMESPACE = SHOP.replace(
    "metadata: {name: shop, labels: {team: shop}}",
    "metadata: {name: shop, labels: {team: shop, network-policy/ingress: nginx}}",
)


def test_a_global_policy_selector_on_a_namespace_label_is_reported(cluster: World) -> None:
    # The classic mistake of the Calico default-deny article: the namespaces carry the label.
    gnp = """
    apiVersion: crd.projectcalico.org/v1
    kind: GlobalNetworkPolicy
    metadata: {name: default.allow-ingress-nginx}
    spec:
      selector: network-policy/ingress == 'nginx'
      types: [Ingress]
      ingress:
      - action: Allow
        protocol: TCP
        source: {namespaceSelector: ingress == 'nginx'}
        destination: {ports: [80, 443]}
    """
    found = findings_of(cluster, gnp, code="namespace-label-as-pod-label", base=SHOP_WITH_LABELLED_NAMESPACE)
    assert [(f.object, f.field) for f in found] == [
        ("GlobalNetworkPolicy default.allow-ingress-nginx", ("spec", "selector"))
    ]
    assert found[0].message == (
        "selector `network-policy/ingress == 'nginx'` tests label network-policy/ingress, which namespaces "
        "carry (shop) but no endpoint does: a selector tests the endpoints' own labels"
    )
    assert found[0].hint == (
        "select by namespace with spec.namespaceSelector (or test the label pcns.network-policy/ingress)"
    )


def test_a_rule_selector_on_a_namespace_label_is_reported_at_the_rule(cluster: World) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: g}
    spec:
      types: [Egress]
      egress:
      - action: Allow
        destination: {selector: network-policy/ingress == 'nginx'}
    """
    found = findings_of(cluster, gnp, code="namespace-label-as-pod-label", base=SHOP_WITH_LABELLED_NAMESPACE)
    assert [f.field for f in found] == [("spec", "egress", 0, "destination", "selector")]


def test_a_label_pods_carry_too_is_not_reported(cluster: World) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: g}
    spec: {selector: team == 'shop', types: [Ingress]}
    """
    pod = """
    apiVersion: v1
    kind: Pod
    metadata: {name: labelled, namespace: ops, labels: {team: shop}}
    status: {phase: Running, podIP: 10.244.2.20}
    """
    assert findings_of(cluster, gnp, pod, code="namespace-label-as-pod-label") == []
