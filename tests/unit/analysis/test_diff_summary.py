"""How a diff's changed flows are grouped and named for people: by namespace pair, with each side
named by the labels that select exactly it."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster

from netfence.analysis.diff import diff_rulesets, summarize
from netfence.model.ports import FlowPort, Protocol

World = Callable[..., Cluster]

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: web-7d9f-a, namespace: a, labels: {app: web, tier: front, pod-template-hash: 7d9f}}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-7d9f-b, namespace: a, labels: {app: web, tier: front, pod-template-hash: 7d9f}}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: a, labels: {app: db, tier: back}}
status: {phase: Running, podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: cache-0, namespace: a, labels: {app: cache, tier: back}}
status: {phase: Running, podIP: 10.0.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: b, labels: {app: x}}
status: {phase: Running, podIP: 10.0.1.1}
"""


def isolate(*apps: str) -> str:
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: lock, namespace: a}}
    spec:
      podSelector: {{matchExpressions: [{{key: app, operator: In, values: [{", ".join(apps)}]}}]}}
      policyTypes: [Ingress]
    """


def lines(world: World, *apps: str) -> list[tuple[str, str, int]]:
    old, new = world(PODS), world(PODS, isolate(*apps))
    diff = diff_rulesets(old.ruleset, new.ruleset, [FlowPort(Protocol.TCP, 80)])
    return [(g.sources, g.destinations, g.count) for g in summarize(diff, new.inventory)]


def test_a_side_is_named_by_the_label_selecting_exactly_it(cluster: World) -> None:
    assert lines(cluster, "web") == [
        ("a/*", "a/app=web", 6),  # every pod of a to both replicas, each replica not to itself
        ("b/x", "a/app=web", 2),
    ]


def test_several_workloads_are_named_by_the_values_of_one_label(cluster: World) -> None:
    assert lines(cluster, "web", "db") == [("a/*", "a/app in (db, web)", 9), ("b/x", "a/app in (db, web)", 3)]


def test_a_label_selecting_exactly_the_side_is_preferred_to_a_list_of_values(cluster: World) -> None:
    assert lines(cluster, "db", "cache") == [("a/*", "a/tier=back", 6), ("b/x", "a/tier=back", 2)]
