"""The HTML report: one self-contained page with the summary, the reachability heat map per port,
the graph of allowed flows between workload groups, each policy explained and the lint findings.

Everything the page shows is also in the JSON it embeds (`<script type="application/json"
id="netfence-data">`, the contract for programs reading a report back): the page's script draws
the heat map from it; the graph (report_graph.py), the policies and the findings are drawn here.
The page fetches nothing: CSS and script are inline, and its Content-Security-Policy admits only
that script and style (by hash) and no request at all, so a name that slipped past escaping
could neither run nor load anything.

The heat map is per endpoint (`detail`), each namespace block collapsible to namespace-pair
counts, or, for large matrices, per namespace pair only: the per-endpoint data grows with
sources x destinations x ports, the namespace counts do not.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from netfence import __version__
from netfence.analysis.explain import PolicyExplanation
from netfence.analysis.matrix import CountArray, Matrix
from netfence.ir.types import EndpointInfo, EndpointKind
from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy
from netfence.model.inventory import Inventory
from netfence.model.policies import NetworkPolicy
from netfence.output.data import explanation_data, flow_port_data
from netfence.output.report_graph import FlowGraph, flow_graph, group_title, layout, namespace_label, port_list

#: Above this many workload groups the graph is drawn between namespaces; above this many
#: namespaces it is left out (thousands of curves between hundreds of nodes show nothing).
GRAPH_GROUP_LIMIT = 80
#: Endpoints named under each policy on the page (the embedded data lists all of them).
SELECTS_SHOWN = 30
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class ReportFinding:
    """A lint finding as the report shows it: the fields of `netfence lint -o json`."""

    code: str
    severity: str
    file: str | None
    line: int | None
    object: str
    message: str
    hint: str

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Report:
    """What one report shows. `findings` None: lint was not run (the section is left out)."""

    inventory: Inventory
    matrix: Matrix
    policies: Sequence[PolicyExplanation]
    findings: Sequence[ReportFinding] | None
    #: Per-endpoint heat map (else namespace pairs only).
    detail: bool
    inputs: Sequence[str] = ()
    title: str = "netfence report"


def report_html(report: Report) -> str:
    """The page, as one string."""
    labels = {pod.id: pod.labels for pod in report.inventory.pods}
    labels.update((w.id, w.labels) for w in report.inventory.external_workloads)
    graph = flow_graph(report.matrix, labels, GRAPH_GROUP_LIMIT)
    data = report_data(report, graph)
    script = _asset("report.js")
    style = _asset("report.css")
    csp = (
        "default-src 'none'; "
        f"script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    unit = "pod" if all(e.kind is EndpointKind.POD for e in _endpoints(report.matrix)) else "endpoint"
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=report.title,
        data=data,
        summary=data["summary"],
        detail=report.detail,
        csp=csp,
        script=Markup(script),
        style=Markup(style),
        graph=graph,
        layout=None if graph is None else layout(graph, unit),
        graph_limit=GRAPH_GROUP_LIMIT,
        selects_shown=SELECTS_SHOWN,
        unit=unit,
        group_title=group_title,
        port_list=port_list,
        tiers=_by_tier(data["policies"]),
        findings=None if report.findings is None else _sorted(report.findings),
        version=__version__,
    )


def report_data(report: Report, graph: FlowGraph | None) -> dict[str, Any]:
    """The embedded JSON: summary, matrix, graph, policies and findings."""
    matrix = report.matrix
    rows, columns = _display_order(matrix.sources), _display_order(matrix.destinations)
    by_namespace = _namespace_allowed(matrix, rows, columns)
    return {
        "netfence": __version__,
        "title": report.title,
        "inputs": list(report.inputs),
        "summary": _summary(report, by_namespace.sum(axis=(1, 2)).tolist()),
        "matrix": _matrix_data(matrix, report.detail, rows, columns, by_namespace),
        "graph": _graph_data(graph),
        "policies": _policies_data(report.policies, report.inventory),
        "findings": None if report.findings is None else [_finding_data(f) for f in _sorted(report.findings)],
    }


def _matrix_data(
    matrix: Matrix, detail: bool, rows: Sequence[int], columns: Sequence[int], by_namespace: CountArray
) -> dict[str, Any]:
    """Sources and destinations in namespace order; per port, one string per source with one
    character per destination, "1" allowed and "0" denied (only with `detail`); per port, source
    namespace and destination namespace, how many flows are allowed (of the product of their
    sizes)."""
    data: dict[str, Any] = {
        "detail": "pods" if detail else "namespaces",
        "ports": [flow_port_data(port) for port in matrix.ports],
        "sourceNamespaces": _namespace_sizes(matrix.sources[i] for i in rows),
        "destinationNamespaces": _namespace_sizes(matrix.destinations[j] for j in columns),
        "namespaceAllowed": by_namespace.tolist(),
        "sources": None,
        "destinations": None,
        "allowed": None,
    }
    if detail:
        order = np.array(columns, dtype=np.int64)
        data["sources"] = [_endpoint_data(matrix.sources[i]) for i in rows]
        data["destinations"] = [_endpoint_data(matrix.destinations[j]) for j in columns]
        data["allowed"] = [
            [(matrix.row(p, i)[order].view(np.uint8) + ord("0")).tobytes().decode("ascii") for i in rows]
            for p in range(len(matrix.ports))
        ]
    return data


def _namespace_allowed(matrix: Matrix, rows: Sequence[int], columns: Sequence[int]) -> CountArray:
    """allowed[port][source namespace][destination namespace], namespaces in display order."""
    from_names = list(dict.fromkeys(matrix.sources[i].namespace for i in rows))
    to_names = list(dict.fromkeys(matrix.destinations[j].namespace for j in columns))
    from_index = {name: g for g, name in enumerate(from_names)}
    to_index = {name: h for h, name in enumerate(to_names)}
    source_group = np.array([from_index[e.namespace] for e in matrix.sources], dtype=np.int64)
    destination_group = np.array([to_index[e.namespace] for e in matrix.destinations], dtype=np.int64)
    return matrix.counts(source_group, len(from_names), destination_group, len(to_names))


def _endpoints(matrix: Matrix) -> set[EndpointInfo]:
    return {*matrix.sources, *matrix.destinations}


def _display_order(endpoints: Sequence[EndpointInfo]) -> list[int]:
    """Namespaces in name order, endpoints without one (external workloads) last."""
    return sorted(range(len(endpoints)), key=lambda i: (endpoints[i].namespace == "", endpoints[i].namespace, endpoints[i].id))


def _namespace_sizes(endpoints: Iterable[EndpointInfo]) -> list[dict[str, Any]]:
    sizes = Counter(e.namespace for e in endpoints)  # insertion order: the display order
    return [{"name": name, "label": namespace_label(name), "size": size} for name, size in sizes.items()]


def _endpoint_data(endpoint: EndpointInfo) -> dict[str, str]:
    return {"id": endpoint.id, "namespace": endpoint.namespace, "name": endpoint.name, "kind": str(endpoint.kind)}


def _summary(report: Report, allowed_per_port: list[int]) -> dict[str, Any]:
    inventory, matrix = report.inventory, report.matrix
    kinds = Counter(e.kind for e in _endpoints(matrix))
    policies = Counter(str(p.kind) for p in _all_policies(inventory))
    namespaces = {n.name for n in inventory.namespaces} | {p.namespace for p in inventory.pods}
    pairs = len(matrix.sources) * len(matrix.destinations)
    ports = []
    for port, allowed in zip(matrix.ports, allowed_per_port):
        ports.append({**flow_port_data(port), "label": str(port), "allowed": allowed, "denied": pairs - allowed})
    return {
        "pods": kinds[EndpointKind.POD],
        "externalWorkloads": kinds[EndpointKind.EXTERNAL],
        "hostEndpoints": len(inventory.host_endpoints),
        "namespaces": len(namespaces),
        "sources": len(matrix.sources),
        "destinations": len(matrix.destinations),
        "policies": dict(sorted(policies.items())),
        "policyCount": sum(policies.values()),
        "ports": ports,
    }


def _graph_data(graph: FlowGraph | None) -> dict[str, Any] | None:
    if graph is None:
        return None
    return {
        "level": graph.level,
        "groups": [{"id": g.id, "namespace": g.namespace, "name": g.name, "size": g.size} for g in graph.groups],
        "edges": [
            {
                "from": e.source,
                "to": e.destination,
                "full": e.full,
                "ports": [{**flow_port_data(c.port), "allowed": c.allowed, "total": c.total} for c in e.ports],
            }
            for e in graph.edges
        ],
    }


def _policies_data(items: Sequence[PolicyExplanation], inventory: Inventory) -> list[dict[str, Any]]:
    """The explanations, each with where its policy was written."""
    locations = {
        (str(p.kind), getattr(p, "namespace", None) or "", p.name): p.location
        for p in _all_policies(inventory)
    }
    policies = []
    for item in items:
        where = locations.get((item.kind, item.namespace, item.name))
        policies.append({**explanation_data(item), "location": None if where is None else str(where)})
    return policies


def _all_policies(inventory: Inventory) -> list[NetworkPolicy | CalicoPolicy | AdminPolicy]:
    return [*inventory.policies, *inventory.calico_policies, *inventory.admin_policies]


def _by_tier(policies: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive policies of one tier together (they come in evaluation order)."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for item in policies:
        tier = item["tier"] or "(no tier)"
        if not groups or groups[-1][0] != tier:
            groups.append((tier, []))
        groups[-1][1].append(item)
    return groups


def _sorted(findings: Sequence[ReportFinding]) -> list[ReportFinding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.file or "", f.line or 0, f.code, f.object))


def _finding_data(finding: ReportFinding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "file": finding.file,
        "line": finding.line,
        "object": finding.object,
        "message": finding.message,
        "hint": finding.hint,
    }


def _asset(name: str) -> str:
    return (resources.files("netfence.output") / "templates" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("netfence.output", "templates"),
        autoescape=select_autoescape(("html", "j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # `tojson` escapes <, >, & and ' as \u003c...: safe inside <script>; compact and sorted.
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "separators": (",", ":")}
    return env
