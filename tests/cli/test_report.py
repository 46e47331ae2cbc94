"""netfence report: one self-contained HTML page whose data, and whose heat map as a real browser
draws it, agree with `netfence matrix -o json` for the same input and ports.

Tests marked `browser` load the page in a headless Chromium (tests/browser.py) and are skipped,
with the reason, where none is installed (tests/conftest.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Browser
from clusters import namespace, pod, to_yaml

import netfence.cli.report as report_cli
from netfence.analysis.explain import explain_policies
from netfence.analysis.matrix import compute_matrix
from netfence.cli.demo import SCENARIOS as DEMO_SCENARIOS
from netfence.cli.demo import scenario_dir
from netfence.ir.build import build_ruleset
from netfence.ir.types import EndpointInfo, EndpointKind
from netfence.model.endpoints import EndpointId
from netfence.model.ports import parse_flow_port
from netfence.output.report import Report, ReportFinding, report_html
from netfence.output.report_graph import workload_name
from netfence.sources.load import load_inventory

Run = Callable[..., tuple[int, str, str]]
Flows = dict[tuple[str, str, int | None, str], bool]

#: Every step of every demo scenario: its files and ports.
STEPS = {
    f"{scenario.name}-{k}": [
        *(arg for name in step.files for arg in ("-f", str(scenario_dir() / name))),
        *(arg for port in step.ports for arg in ("--port", port)),
    ]
    for scenario in DEMO_SCENARIOS
    for k, step in enumerate(scenario.steps)
}
COLORS = str(scenario_dir() / "colors")
LAYERED = str(scenario_dir() / "layered")
WHITELIST = str(scenario_dir() / "whitelist")


def write_report(run: Run, path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    code, out, err = run("report", *args, "-o", str(path))
    assert code == 0, err
    assert out == ""
    html = path.read_text()
    return html, embedded_data(html)


def embedded_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="netfence-data">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def matrix_flows(run: Run, *args: str) -> Flows:
    code, out, err = run("matrix", *args, "-o", "json")
    assert code == 0, err
    return {(f["from"], f["to"], f["port"], f["protocol"]): f["allowed"] for f in json.loads(out)["flows"]}


def report_flows(data: dict[str, Any]) -> Flows:
    """The flows the embedded data lists: one character per destination, per source and port."""
    matrix = data["matrix"]
    flows: Flows = {}
    for p, port in enumerate(matrix["ports"]):
        for i, source in enumerate(matrix["sources"]):
            row = matrix["allowed"][p][i]
            assert len(row) == len(matrix["destinations"])
            for j, destination in enumerate(matrix["destinations"]):
                flows[(source["id"], destination["id"], port["port"], port["protocol"])] = row[j] == "1"
    return flows


def namespace_of(endpoint: str) -> str:
    return "" if endpoint.startswith("ext/") else endpoint.split("/")[0]


# --- the page ---------------------------------------------------------------------------------


def test_report_is_one_page_that_loads_nothing_and_runs_only_its_own_script(run: Run, tmp_path: Path) -> None:
    html, _ = write_report(run, tmp_path / "report.html", "-f", LAYERED)
    assert html.startswith("<!DOCTYPE html>")
    assert "<link" not in html and " src=" not in html and "@import" not in html and "url(" not in html
    # The only URL is the SVG namespace, which names and does not fetch.
    assert set(re.findall(r"\w+://[^\s\"'<>)]*", html)) == {"http://www.w3.org/2000/svg"}
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert policy is not None
    csp = policy.group(1).replace("&#39;", "'")
    assert csp.startswith("default-src 'none'; ")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for text, directive in ((scripts[0], "script-src"), (styles[0], "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp


def test_report_prints_where_it_wrote_to_stderr(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    path.parent.mkdir()
    code, out, err = run("report", "-f", COLORS, "--port", "80", "-o", str(path))
    assert (code, out) == (0, "")
    assert err == f"wrote {path}: 6 sources x 6 destinations on 1 port (pods), 1 policy\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_to_stdout_is_the_same_page(run: Run, tmp_path: Path) -> None:
    html, _ = write_report(run, tmp_path / "report.html", "-f", COLORS)
    code, out, err = run("report", "-f", COLORS, "-o", "-")
    assert (code, err) == (0, "")
    assert out == html


def test_report_without_ports_is_a_usage_error(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("cluster.yaml", to_yaml(pod("dev", "a", ports=())))
    code, out, err = run("report", "-f", path, "-o", "-")
    assert (code, out) == (2, "")
    assert err == "error: no ports to evaluate: the inventory declares no containerPorts; pass --port PORT/PROTO\n"


def test_report_into_a_missing_directory_fails_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "report.html"
    code, out, err = run("report", "-f", COLORS, "-o", str(target))
    assert (code, out) == (2, "")
    assert err == f"error: cannot write {target}: No such file or directory\n"
    assert list(tmp_path.iterdir()) == []


# --- the data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_embedded_matrix_equals_matrix_json(run: Run, tmp_path: Path, step: str) -> None:
    _, data = write_report(run, tmp_path / "report.html", *STEPS[step])
    assert data["matrix"]["detail"] == "pods"
    assert report_flows(data) == matrix_flows(run, *STEPS[step])


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "ICMP", "--port", "53/UDP", "--port", "80/TCP"],
        ["--port", "80", "--from", "*/blue-*", "--from", "prod", "--to", "dev"],
        ["--port", "80", "-n", "prod"],
    ],
    ids=["ports", "from-to", "namespace"],
)
def test_embedded_matrix_equals_matrix_json_for_the_same_ports_and_endpoints(
    run: Run, tmp_path: Path, args: list[str]
) -> None:
    _, data = write_report(run, tmp_path / "report.html", "-f", COLORS, *args)
    assert report_flows(data) == matrix_flows(run, "-f", COLORS, *args)


def test_namespace_pairs_count_the_flows_of_matrix_json(run: Run, tmp_path: Path) -> None:
    _, data = write_report(run, tmp_path / "report.html", "-f", WHITELIST)
    counted: dict[tuple[str, str, int | None, str], list[int]] = {}
    for (source, destination, port, protocol), allowed in matrix_flows(run, "-f", WHITELIST).items():
        entry = counted.setdefault((namespace_of(source), namespace_of(destination), port, protocol), [0, 0])
        entry[0] += allowed
        entry[1] += 1
    matrix = data["matrix"]
    pairs = {
        (source["name"], destination["name"], port["port"], port["protocol"]): [
            matrix["namespaceAllowed"][p][g][h],
            source["size"] * destination["size"],
        ]
        for p, port in enumerate(matrix["ports"])
        for g, source in enumerate(matrix["sourceNamespaces"])
        for h, destination in enumerate(matrix["destinationNamespaces"])
    }
    assert pairs == counted
    assert ("", "wordpress", 80, "TCP") in pairs  # the external workloads, namespace ""


def test_summary_counts_pods_policies_and_flows_per_port(run: Run, tmp_path: Path) -> None:
    html, data = write_report(run, tmp_path / "report.html", "-f", LAYERED)
    summary = data["summary"]
    assert (summary["pods"], summary["namespaces"], summary["policyCount"]) == (7, 3, 5)
    assert summary["policies"] == {
        "AdminNetworkPolicy": 2,
        "BaselineAdminNetworkPolicy": 1,
        "GlobalNetworkPolicy": 1,
        "NetworkPolicy": 1,
    }
    assert [(p["label"], p["allowed"], p["denied"]) for p in summary["ports"]] == [("TCP/80", 7, 42), ("TCP/5432", 8, 41)]
    assert '<tr data-port="TCP/5432"><td>TCP/5432</td><td class="num">8</td><td class="num">41</td>' in html


def test_large_matrices_show_namespace_pairs_unless_pods_are_asked_for(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_cli, "DETAIL_THRESHOLD", 5)  # colors has 6 pods
    _, data = write_report(run, tmp_path / "auto.html", "-f", COLORS)
    matrix = data["matrix"]
    assert (matrix["detail"], matrix["sources"], matrix["allowed"]) == ("namespaces", None, None)
    assert [(n["name"], n["size"]) for n in matrix["sourceNamespaces"]] == [("dev", 3), ("prod", 3)]
    assert matrix["namespaceAllowed"] == [[[7, 6], [6, 9]]]
    _, data = write_report(run, tmp_path / "pods.html", "-f", COLORS, "--detail", "pods")
    assert report_flows(data) == matrix_flows(run, "-f", COLORS)


def test_policies_are_explained_in_evaluation_order_grouped_by_tier(run: Run, tmp_path: Path) -> None:
    html, data = write_report(run, tmp_path / "report.html", "-f", LAYERED)
    _, out, _ = run("explain", "-f", LAYERED, "-o", "json")
    explained = json.loads(out)["policies"]
    assert [{k: v for k, v in p.items() if k != "location"} for p in data["policies"]] == explained
    assert all(re.fullmatch(r".*layered/\w+\.yaml:\d+", p["location"]) for p in data["policies"])
    assert re.findall(r'<section class="tier" data-tier="([^"]+)">', html) == [
        "kube-admin",
        "security",
        "default",
        "kube-baseline",
    ]


def test_names_labels_and_selectors_are_escaped_in_the_page_and_its_data(
    run: Run, tmp_path: Path, write: Callable[[str, str], str]
) -> None:
    hostile = "</script><img src=x onerror=alert(1)>"
    path = write(
        "cluster.yaml",
        to_yaml(
            namespace("dev"),
            pod("dev", "a", {"app": "a"}),
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "odd"},
                "spec": {"selector": f"app == '{hostile}'", "types": ["Ingress"], "ingress": [{"action": "Allow"}]},
            },
        ),
    )
    html, data = write_report(run, tmp_path / "report.html", "-f", path)
    assert hostile in data["policies"][0]["appliesTo"]
    assert "<img" not in html and "onerror=alert(1)>" not in html
    assert "app == &#39;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;" in html


def test_workload_groups_come_from_application_labels_or_generated_pod_names() -> None:
    def endpoint(name: str, kind: EndpointKind = EndpointKind.POD) -> EndpointInfo:
        return EndpointInfo(EndpointId(f"dev/{name}"), "dev", name, (), None, kind=kind)

    assert workload_name(endpoint("x-1"), {"app.kubernetes.io/name": "shop", "app": "web"}) == "shop"
    assert workload_name(endpoint("x-1"), {"app": "web"}) == "web"
    assert workload_name(endpoint("x-1"), {"app": "wordpress", "tier": "mysql"}) == "wordpress (mysql)"
    assert workload_name(endpoint("x-1"), {"app": "db", "app.kubernetes.io/component": "db"}) == "db"
    assert workload_name(endpoint("web-6d4cf56db6-x2v7k"), {}) == "web"  # Deployment
    assert workload_name(endpoint("agent-x2v7k"), {}) == "agent"  # DaemonSet
    assert workload_name(endpoint("db-0"), {}) == "db"  # StatefulSet
    assert workload_name(endpoint("nginx-proxy"), {}) == "nginx-proxy"  # "proxy" is not generated
    assert workload_name(endpoint("lb-x2v7k", EndpointKind.EXTERNAL), {}) == "lb-x2v7k"


def test_graph_has_one_edge_per_group_pair_with_an_allowed_flow(run: Run, tmp_path: Path) -> None:
    html, data = write_report(run, tmp_path / "report.html", "-f", COLORS)
    graph = data["graph"]
    assert graph["level"] == "workloads"
    assert [g["id"] for g in graph["groups"]] == [
        "dev/blue", "dev/green", "dev/red", "prod/blue", "prod/green", "prod/red",
    ]  # fmt: skip

    def group(endpoint: str) -> str:  # colors pods are `<app>-<hash>-<suffix>`
        return endpoint.split("-")[0]

    expected: dict[tuple[str, str], list[int]] = {}
    for (source, destination, _, _), allowed in matrix_flows(run, "-f", COLORS).items():
        if source != destination:
            entry = expected.setdefault((group(source), group(destination)), [0, 0])
            entry[0] += allowed
            entry[1] += 1
    edges = {(e["from"], e["to"]): [e["ports"][0]["allowed"], e["ports"][0]["total"]] for e in graph["edges"]}
    assert edges == {pair: counts for pair, counts in expected.items() if counts[0]}
    drawn = set(re.findall(r'<path class="edge \w+" d="[^"]+" stroke-width="[\d.]+"\s+data-from="([^"]+)" data-to="([^"]+)"', html))
    assert drawn == set(edges)


def test_graph_leaves_out_an_endpoint_reaching_itself(run: Run, tmp_path: Path) -> None:
    _, data = write_report(run, tmp_path / "report.html", "-f", LAYERED, "--port", "80")
    assert data["graph"]["edges"] == []  # every other flow on TCP/80 is denied


def test_lint_findings_are_those_of_netfence_lint(run: Run, tmp_path: Path) -> None:
    base = scenario_dir() / "ingress-controller"
    files = ["-f", str(base / "cluster.yaml"), "-f", str(base / "two-peers.yaml")]
    html, data = write_report(run, tmp_path / "report.html", *files)
    _, out, _ = run("lint", *files, "-o", "json")
    expected = json.loads(out)["findings"]
    assert {"split-peers", "peer-matches-nothing"} <= {f["code"] for f in expected}
    def key(finding: dict[str, Any]) -> str:
        return json.dumps(finding, sort_keys=True)

    assert sorted(data["findings"], key=key) == sorted(expected, key=key)
    assert html.count('<tr class="warning" data-code=') == len(expected)
    _, data = write_report(run, tmp_path / "without.html", *files, "--no-lint")
    assert data["findings"] is None


def test_lint_findings_are_listed_most_severe_first_and_left_out_when_lint_did_not_run(tmp_path: Path) -> None:
    inventory = load_inventory([COLORS]).inventory
    ruleset = build_ruleset(inventory)
    matrix = compute_matrix(ruleset, [parse_flow_port("80")])
    findings = [
        ReportFinding("dns-egress", "warning", "b.yaml", 3, "NetworkPolicy dev/x", "no DNS", "allow UDP 53"),
        ReportFinding("selects-nothing", "error", "a.yaml", 9, "NetworkPolicy dev/y", "selects <none>", "fix it"),
    ]
    explained = explain_policies(inventory, ruleset)
    html = report_html(Report(inventory, matrix, explained, findings, True))
    data = embedded_data(html)
    assert [f["code"] for f in data["findings"]] == ["selects-nothing", "dns-egress"]
    assert data["findings"][0] == {
        "code": "selects-nothing",
        "severity": "error",
        "file": "a.yaml",
        "line": 9,
        "object": "NetworkPolicy dev/y",
        "message": "selects <none>",
        "hint": "fix it",
    }
    assert re.findall(r'<tr class="(\w+)" data-code="([\w-]+)">', html) == [("error", "selects-nothing"), ("warning", "dns-egress")]
    assert "<code>a.yaml:9</code>" in html and "selects &lt;none&gt;" in html
    without = report_html(Report(inventory, matrix, explained, None, True))
    assert 'id="findings"' not in without and embedded_data(without)["findings"] is None


# --- in a browser -----------------------------------------------------------------------------

#: Every heat-map cell of every port, read after choosing the port in the page's own control.
READ_CELLS = """(() => {
  const select = document.getElementById("port");
  const cells = [];
  for (const option of select.options) {
    select.value = option.value;
    select.dispatchEvent(new Event("change"));
    const table = document.getElementById("heatmap-table");
    for (const td of table.querySelectorAll("td.cell")) {
      const d = td.dataset;
      cells.push({port: table.dataset.port === "" ? null : Number(table.dataset.port), protocol: table.dataset.protocol,
        from: d.from ?? null, to: d.to ?? null, fromNamespace: d.fromNamespace ?? null, toNamespace: d.toNamespace ?? null,
        allowed: d.allowed ?? null, count: d.count === undefined ? null : Number(d.count),
        total: d.total === undefined ? null : Number(d.total)});
    }
  }
  select.value = "0";
  select.dispatchEvent(new Event("change"));
  return cells;
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser.start() as started:
        yield started


def check_cells(cells: list[dict[str, Any]], flows: Flows) -> None:
    """Each cell shows what `matrix -o json` says of its flows, and the cells of a port cover
    every flow of that port once."""
    sources = sorted({f for f, _, _, _ in flows})
    destinations = sorted({t for _, t, _, _ in flows})
    covered: dict[tuple[int | None, str], int] = {}
    for cell in cells:
        port = (cell["port"], cell["protocol"])
        froms = [cell["from"]] if cell["from"] is not None else [s for s in sources if namespace_of(s) == cell["fromNamespace"]]
        tos = [cell["to"]] if cell["to"] is not None else [d for d in destinations if namespace_of(d) == cell["toNamespace"]]
        verdicts = [flows[(s, d, *port)] for s in froms for d in tos]
        if cell["allowed"] is not None:
            assert cell["allowed"] == ("true" if verdicts[0] else "false"), cell
            assert len(verdicts) == 1
        else:
            assert (cell["count"], cell["total"]) == (sum(verdicts), len(verdicts)), cell
        covered[port] = covered.get(port, 0) + len(verdicts)
    ports = {(p, proto) for _, _, p, proto in flows}
    assert covered == {port: len(sources) * len(destinations) for port in ports}


def open_report(browser: Browser, path: Path) -> Any:
    page = browser.open(path.as_uri())
    assert page.errors == []
    assert page.requests == [path.as_uri()]  # nothing but the page itself
    return page


@pytest.mark.browser
@pytest.mark.parametrize("step", STEPS)
def test_page_loads_without_errors_and_its_cells_equal_matrix_json(
    run: Run, tmp_path: Path, browser: Browser, step: str
) -> None:
    path = tmp_path / "report.html"
    write_report(run, path, *STEPS[step])
    page = open_report(browser, path)
    cells = page.evaluate(READ_CELLS)
    assert all(c["allowed"] is not None for c in cells)  # every namespace expanded
    check_cells(cells, matrix_flows(run, *STEPS[step]))
    assert page.errors == []
    page.close()


@pytest.mark.browser
def test_collapsing_namespaces_shows_the_counts_of_matrix_json(run: Run, tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "report.html"
    args = ["-f", WHITELIST, "--port", "80", "--port", "3306"]
    write_report(run, path, *args)
    flows = matrix_flows(run, *args)
    page = open_report(browser, path)
    page.evaluate('document.getElementById("collapse-all").click()')
    cells = page.evaluate(READ_CELLS)
    assert all(c["from"] is None and c["to"] is None for c in cells)
    check_cells(cells, flows)
    page.evaluate('document.querySelector("#heatmap-table thead button.ns[data-namespace=wordpress]").click()')
    cells = page.evaluate(READ_CELLS)
    assert any(c["from"] is None and c["to"] is not None for c in cells)  # a namespace row, pod columns
    check_cells(cells, flows)
    page.evaluate('document.getElementById("expand-all").click()')
    check_cells(page.evaluate(READ_CELLS), flows)
    assert page.evaluate('document.getElementById("heatmap-table").querySelectorAll("td.agg").length') == 0
    assert page.errors == []
    page.close()


@pytest.mark.browser
def test_namespace_heat_map_equals_matrix_json_counts(run: Run, tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "report.html"
    write_report(run, path, "-f", LAYERED, "--detail", "namespaces")
    page = open_report(browser, path)
    cells = page.evaluate(READ_CELLS)
    assert len(cells) == 2 * 3 * 3 and all(c["allowed"] is None for c in cells)
    check_cells(cells, matrix_flows(run, "-f", LAYERED))
    assert page.evaluate('[...document.querySelectorAll("button.ns")].every(b => b.disabled)') is True
    page.close()


@pytest.mark.browser
def test_a_200_pod_heat_map_draws_every_pair(
    run: Run, tmp_path: Path, browser: Browser, write: Callable[[str, str], str]
) -> None:
    objects: list[dict[str, Any]] = []
    for n in range(4):
        objects.append(namespace(f"ns{n}", {"team": f"t{n % 2}"}))
        objects += [pod(f"ns{n}", f"app{k % 5}-{k}", {"app": f"app{k % 5}"}) for k in range(50)]
        objects.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "same-team-app0", "namespace": f"ns{n}"},
                "spec": {
                    "podSelector": {},
                    "ingress": [
                        {"from": [{"namespaceSelector": {"matchLabels": {"team": f"t{n % 2}"}}, "podSelector": {"matchLabels": {"app": "app0"}}}]}
                    ],
                },
            }
        )
    path = write("cluster.yaml", to_yaml(*objects))
    report = tmp_path / "report.html"
    _, data = write_report(run, report, "-f", path)
    assert data["matrix"]["detail"] == "pods"
    page = open_report(browser, report)
    cells = page.evaluate(READ_CELLS)
    assert len(cells) == 200 * 200
    check_cells(cells, matrix_flows(run, "-f", path))
    page.close()


@pytest.mark.browser
def test_pointing_at_a_workload_lights_its_curves(run: Run, tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "report.html"
    _, data = write_report(run, path, "-f", COLORS)
    page = open_report(browser, path)
    lit = page.evaluate(
        """(() => {
          const node = document.querySelector('#flow-graph .node[data-side="from"][data-group="dev/red"]');
          node.dispatchEvent(new MouseEvent("mouseenter"));
          return [...document.querySelectorAll("#flow-graph .edge.lit")].map(e => [e.dataset.from, e.dataset.to]);
        })()"""
    )
    assert sorted(map(tuple, lit)) == sorted((e["from"], e["to"]) for e in data["graph"]["edges"] if e["from"] == "dev/red")
    assert lit
    assert page.errors == []
    page.close()
