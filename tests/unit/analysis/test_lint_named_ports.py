"""Lint check named-port-undeclared: port names no pod they resolve on declares."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

World = Callable[..., Cluster]


def ingress_to_db(port: str) -> str:
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: db-in, namespace: shop}}
    spec:
      podSelector: {{matchLabels: {{app: db}}}}
      ingress:
      - from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]
        ports: [{port}]
    """


def test_an_ingress_port_name_the_selected_pods_do_not_declare_is_reported(cluster: World) -> None:
    found = findings_of(cluster, ingress_to_db("{port: postgresql}"), code="named-port-undeclared")
    assert [(f.field, f.message) for f in found] == [
        (
            ("spec", "ingress", 0, "ports", 0),
            "ingress[0] port 'postgresql' (TCP): none of the pods the policy selects (1 pod) declares a "
            "containerPort named 'postgresql'; the entry matches nothing",
        )
    ]


def test_a_name_declared_with_another_protocol_says_which(cluster: World) -> None:
    found = findings_of(cluster, ingress_to_db("{port: postgres, protocol: UDP}"), code="named-port-undeclared")
    assert found[0].message == (
        "ingress[0] port 'postgres' (UDP): none of the pods the policy selects (1 pod) declares a containerPort "
        "named 'postgres' with that protocol (it is declared as TCP on shop/db); the entry matches nothing"
    )


def test_a_declared_name_is_not_reported(cluster: World) -> None:
    assert findings_of(cluster, ingress_to_db("{port: postgres}"), code="named-port-undeclared") == []


def test_an_egress_port_name_resolves_on_the_peers(cluster: World) -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web-out, namespace: shop}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Egress]
      egress:
      - to: [{podSelector: {matchLabels: {app: db}}}]
        ports: [{port: postgres}, {port: http}]
    """
    # web declares http, but egress ports resolve on the destination: db, which does not.
    found = findings_of(cluster, policy, code="named-port-undeclared")
    assert [f.field for f in found] == [("spec", "egress", 0, "ports", 1)]
    assert "none of the pods its peers match (1 pod)" in found[0].message
