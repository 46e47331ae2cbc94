"""The report's graph: allowed flows between workload groups, laid out for an inline SVG.

A workload group is a namespace and an application: the first of the labels `GROUP_LABELS` a pod
carries (with its part, `ROLE_LABELS`, when it has one), else its name without the suffixes a
Deployment, DaemonSet or StatefulSet generates: what policies select on, when labels say.
An external workload is a group of its own (or of its application label). Above `limit` groups
the graph is drawn between namespaces instead, and above `limit` namespaces not at all.

The layout is two layers, sources on the left and destinations on the right, both in namespace
order, with one curve per group pair some flow is allowed between. Every edge is then drawn
between two fixed columns, so cycles and self edges (pods of one group reaching each other) need
no special case, and the picture stays readable at a few hundred edges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from netfence.analysis.matrix import Matrix
from netfence.ir.types import EndpointInfo, EndpointKind
from netfence.model.endpoints import EndpointId
from netfence.model.ports import FlowPort

#: Labels that name an application, most specific first (Kubernetes' recommended label first).
GROUP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app", "name")
#: Labels that name a part of an application (its web tier, its database).
ROLE_LABELS = ("app.kubernetes.io/component", "component", "tier")
#: How the report names the group of endpoints without a namespace (external workloads).
EXTERNAL_NAMESPACE = "(external)"

# Generated pod name suffixes use Kubernetes' safe alphabet (no vowels, no 0, 1, 3), so
# `nginx-proxy` keeps its name and `web-6d4cf56db6-x2v7k` becomes `web`.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_GENERATED = (re.compile(rf"^(.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}$"), re.compile(rf"^(.+)-{_SAFE}{{5}}$"), re.compile(r"^(.+)-\d+$"))

# Geometry, in SVG user units (CSS pixels).
_ROW, _HEAD, _TOP, _NODE_W, _NODE_H, _CHAR = 22, 26, 34, 10, 14, 7.2
_PALETTE = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#2ca02c", "#d62728", "#ff7f0e")


def workload_name(endpoint: EndpointInfo, labels: Mapping[str, str]) -> str:
    """The application an endpoint belongs to, within its namespace, with its part in it when a
    label says (`wordpress (mysql)` apart from `wordpress (frontend)`)."""
    for key in GROUP_LABELS:
        if labels.get(key):
            role = next((labels[k] for k in ROLE_LABELS if labels.get(k)), None)
            return labels[key] if role is None or role == labels[key] else f"{labels[key]} ({role})"
    if endpoint.kind is EndpointKind.POD:
        for pattern in _GENERATED:
            found = pattern.match(endpoint.name)
            if found:
                return found.group(1)
    return endpoint.name


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    namespace: str
    name: str
    #: Endpoints in the group (sources and destinations together).
    size: int


@dataclass(frozen=True, slots=True)
class PortCount:
    port: FlowPort
    allowed: int
    total: int


@dataclass(frozen=True, slots=True)
class Edge:
    """Flows from the sources of one group to the destinations of another (an endpoint reaching
    itself left out), on every port some are allowed."""

    source: str
    destination: str
    ports: tuple[PortCount, ...]
    #: Every pair allowed on every port of the matrix.
    full: bool

    @property
    def fraction(self) -> float:
        return max(c.allowed / c.total for c in self.ports)


@dataclass(frozen=True, slots=True)
class FlowGraph:
    #: "workloads" or "namespaces".
    level: str
    groups: tuple[Group, ...]
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    edges: tuple[Edge, ...]


def flow_graph(matrix: Matrix, labels: Mapping[EndpointId, Mapping[str, str]], limit: int) -> FlowGraph | None:
    """The groups and the allowed flows between them, counted on the matrix's classes: between
    workloads, else between namespaces, else (more than `limit` namespaces too) None."""
    everyone = {e.id: e for e in (*matrix.sources, *matrix.destinations)}.values()
    workloads = {e.id: _workload_key(e, labels.get(e.id, {})) for e in everyone}
    if len(set(workloads.values())) <= limit:
        return _graph(matrix, workloads, "workloads")
    namespaces = {e.id: (e.namespace, namespace_label(e.namespace)) for e in everyone}
    if len(set(namespaces.values())) <= limit:
        return _graph(matrix, namespaces, "namespaces")
    return None


def namespace_label(namespace: str) -> str:
    return namespace or EXTERNAL_NAMESPACE


def _workload_key(endpoint: EndpointInfo, labels: Mapping[str, str]) -> tuple[str, str]:
    return (endpoint.namespace, workload_name(endpoint, labels))


def _graph(matrix: Matrix, group_of: Mapping[EndpointId, tuple[str, str]], level: str) -> FlowGraph:
    """`group_of`: endpoint id -> (namespace, group name)."""
    keys = sorted(set(group_of.values()), key=lambda k: (k[0] == "", k))
    index = {k: g for g, k in enumerate(keys)}
    sizes = np.bincount([index[k] for k in group_of.values()], minlength=len(keys))
    ids = [_group_id(namespace, name, level) for namespace, name in keys]
    groups = tuple(Group(ids[g], namespace, name, int(sizes[g])) for g, (namespace, name) in enumerate(keys))
    source_group = np.array([index[group_of[e.id]] for e in matrix.sources], dtype=np.int64)
    destination_group = np.array([index[group_of[e.id]] for e in matrix.destinations], dtype=np.int64)
    count = len(keys)
    allowed = matrix.counts(source_group, count, destination_group, count)
    total = np.outer(np.bincount(source_group, minlength=count), np.bincount(destination_group, minlength=count))
    # An endpoint reaching itself is always allowed and says nothing about policy: leave it out.
    destination_ids = {e.id for e in matrix.destinations}
    selves = np.bincount(
        [index[group_of[e.id]] for e in matrix.sources if e.id in destination_ids], minlength=count
    ).astype(np.int64)
    diagonal = np.arange(count)
    allowed[:, diagonal, diagonal] -= selves
    total[diagonal, diagonal] -= selves
    edges = []
    for g in range(count):
        for h in range(count):
            ports = tuple(
                PortCount(port, int(allowed[p, g, h]), int(total[g, h]))
                for p, port in enumerate(matrix.ports)
                if allowed[p, g, h] > 0
            )
            if ports:
                full = len(ports) == len(matrix.ports) and all(c.allowed == c.total for c in ports)
                edges.append(Edge(ids[g], ids[h], ports, full))
    return FlowGraph(
        level,
        groups,
        tuple(ids[g] for g in sorted(set(source_group.tolist()))),
        tuple(ids[h] for h in sorted(set(destination_group.tolist()))),
        tuple(edges),
    )


def _group_id(namespace: str, name: str, level: str) -> str:
    if level == "namespaces":
        return namespace_label(namespace)
    return f"{namespace}/{name}" if namespace else f"ext/{name}"


# --- layout -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    group: Group
    #: "from" (the left column) or "to".
    side: str
    x: float
    y: float
    color: str
    #: Where its label goes, and which way it runs from there ("start" or "end").
    label_x: float
    anchor: str
    label: str


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    x: float
    y: float
    anchor: str


@dataclass(frozen=True, slots=True)
class Curve:
    edge: Edge
    path: str
    width: float
    title: str


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    nodes: tuple[Node, ...]
    headings: tuple[Heading, ...]
    curves: tuple[Curve, ...]
    node_size: tuple[int, int]


def layout(graph: FlowGraph, unit: str) -> Layout:
    """Positions for the SVG: sources in the left column, destinations in the right one, each
    namespace under a heading; `unit` names what a group holds ("pod")."""
    by_id = {g.id: g for g in graph.groups}
    namespaces = sorted({g.namespace for g in graph.groups}, key=lambda n: (n == "", n))
    color = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(namespaces)}
    labels = {g.id: g.name if graph.level == "workloads" else g.id for g in graph.groups}
    text_width = _CHAR * max([len(t) for t in (*labels.values(), *map(namespace_label, namespaces))] + [4]) + 12
    gap = max(260.0, 40.0 * len(graph.groups) ** 0.5)
    left_x = text_width
    right_x = left_x + _NODE_W + gap
    width = right_x + _NODE_W + text_width
    nodes: list[Node] = []
    headings: list[Heading] = [
        Heading("from", left_x + _NODE_W / 2, 16, "middle"),
        Heading("to", right_x + _NODE_W / 2, 16, "middle"),
    ]
    centre: dict[tuple[str, str], float] = {}
    bottom = float(_TOP)
    for side, ids, x in (("from", graph.sources, left_x), ("to", graph.destinations, right_x)):
        left = side == "from"
        y = float(_TOP)
        current: str | None = None
        for group_id in ids:
            group = by_id[group_id]
            if graph.level == "workloads" and group.namespace != current:
                current = group.namespace
                y += _HEAD
                label_x = x - 6 if left else x + _NODE_W + 6
                headings.append(Heading(namespace_label(current), label_x, y - 8, "end" if left else "start"))
            label_x = x - 6 if left else x + _NODE_W + 6
            nodes.append(Node(group, side, x, y, color[group.namespace], label_x, "end" if left else "start", labels[group_id]))
            centre[(side, group_id)] = y + _NODE_H / 2
            y += _ROW
        bottom = max(bottom, y)
    curves = []
    for edge in graph.edges:
        x1, y1 = left_x + _NODE_W, centre[("from", edge.source)]
        x2, y2 = right_x, centre[("to", edge.destination)]
        middle = (x1 + x2) / 2
        path = f"M{x1:g},{y1:g} C{middle:g},{y1:g} {middle:g},{y2:g} {x2:g},{y2:g}"
        counts = "; ".join(f"{c.port}: {c.allowed} of {c.total} {unit} pairs" for c in edge.ports)
        title = f"{edge.source} → {edge.destination}: {counts}"
        curves.append(Curve(edge, path, round(1.0 + 2.5 * edge.fraction, 2), title))
    return Layout(width, bottom + 10, tuple(nodes), tuple(headings), tuple(curves), (_NODE_W, _NODE_H))


def group_title(group: Group, unit: str) -> str:
    return f"{group.id}: {group.size} {unit}{'s' if group.size != 1 else ''}"


def port_list(ports: Sequence[PortCount]) -> str:
    return " ".join(str(c.port) for c in ports)
