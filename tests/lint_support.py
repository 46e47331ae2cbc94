"""Lint tests: a small shop cluster in YAML, and the findings of one check for it plus a few objects."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster

from netfence.analysis.lint import Finding, lint

#: shop (team=shop) runs web (http 80) and db (postgres 5432); kube-system runs CoreDNS;
#: ops (team=ops) runs a toolbox.
SHOP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {team: ops}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80, name: http}]}]}
status: {phase: Running, podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: postgres, ports: [{containerPort: 5432, name: postgres}]}]}
status: {phase: Running, podIP: 10.244.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: toolbox, namespace: ops, labels: {app: toolbox}}
spec: {containers: [{name: c, image: busybox}]}
status: {phase: Running, podIP: 10.244.2.10}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  containers:
  - name: c
    image: coredns
    ports: [{containerPort: 53, name: dns, protocol: UDP}, {containerPort: 53, name: dns-tcp, protocol: TCP}]
status: {phase: Running, podIP: 10.244.3.10}
"""

Lint = Callable[..., list[Finding]]


def findings_of(cluster: Callable[..., Cluster], *objects: str, code: str, base: str = SHOP) -> list[Finding]:
    """The findings of check `code` for the shop cluster (or `base`) plus `objects`."""
    loaded = cluster(*([base] if base else []), *objects)
    return [f for f in lint(loaded.inventory, loaded.ruleset) if f.code == code]
