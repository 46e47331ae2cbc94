"""Lint check egress-without-dns: egress isolation without UDP/TCP 53 to the DNS pods."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

World = Callable[..., Cluster]

DENY_EGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
"""


def dns_exception(protocols: tuple[str, ...] = ("UDP", "TCP")) -> str:
    ports = ", ".join(f"{{protocol: {p}, port: 53}}" for p in protocols)
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: allow-dns, namespace: shop}}
    spec:
      podSelector: {{}}
      policyTypes: [Egress]
      egress:
      - to:
        - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
          podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}
        ports: [{ports}]
    """


def test_a_default_deny_of_egress_without_dns_is_reported_on_it(cluster: World) -> None:
    found = findings_of(cluster, DENY_EGRESS, code="egress-without-dns")
    assert [(f.object, f.field) for f in found] == [("NetworkPolicy shop/default-deny-egress", ("spec", "egress"))]
    assert found[0].message == (
        "isolates 2 pods for egress (shop/db, shop/web) with no UDP/53 or TCP/53 allowed to the DNS pods "
        "(kube-system/coredns): they cannot resolve names"
    )


def test_a_dns_exception_to_the_dns_pods_clears_it(cluster: World) -> None:
    assert findings_of(cluster, DENY_EGRESS, dns_exception(), code="egress-without-dns") == []


def test_an_exception_for_udp_only_leaves_tcp_missing(cluster: World) -> None:
    found = findings_of(cluster, DENY_EGRESS, dns_exception(("UDP",)), code="egress-without-dns")
    assert len(found) == 1
    assert "with no TCP/53 allowed" in found[0].message


def test_port_53_to_anywhere_is_a_dns_exception(cluster: World) -> None:
    # The Calico default-deny article: egress denied except TCP and UDP 53, to any destination.
    gnp = """
    apiVersion: crd.projectcalico.org/v1
    kind: GlobalNetworkPolicy
    metadata: {name: default.default-deny-all-egress}
    spec:
      selector: projectcalico.org/namespace == 'shop'
      types: [Egress]
      egress:
      - {action: Allow, protocol: TCP, destination: {ports: [53]}}
      - {action: Allow, protocol: UDP, destination: {ports: [53]}}
    """
    assert findings_of(cluster, gnp, code="egress-without-dns") == []


def test_an_egress_policy_allowing_only_the_database_is_reported(cluster: World) -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web-to-db, namespace: shop}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Egress]
      egress:
      - to: [{podSelector: {matchLabels: {app: db}}}]
        ports: [{port: 5432}]
    """
    found = findings_of(cluster, policy, code="egress-without-dns")
    assert [f.object for f in found] == ["NetworkPolicy shop/web-to-db"]


def test_ingress_isolation_is_not_egress_isolation(cluster: World) -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-ingress, namespace: shop}
    spec: {podSelector: {}, policyTypes: [Ingress]}
    """
    assert findings_of(cluster, policy, code="egress-without-dns") == []
