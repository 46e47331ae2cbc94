"""netfence suggest: the printed policies load with the inventory, and `matrix` on both allows
exactly the observed flows and their replicas; the report on stderr; bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
import pytest
import yaml
from suggest_shop import CLUSTER, OBSERVED, PORTS, expected_verdict

from netfence.analysis.suggest.flows import FlowRecord, record_lines
from netfence.model.ports import FlowPort, Protocol

Run = Callable[..., tuple[int, str, str]]

#: The shop's pod addresses (conntrack knows addresses only).
ADDRESSES = {
    "shop/web-5d8f7-a1": "10.60.1.11",
    "shop/web-5d8f7-b2": "10.60.2.12",
    "shop/api-0": "10.60.1.21",
    "shop/db-0": "10.60.2.31",
    "shop/cache": "10.60.1.32",
    "tools/toolbox": "10.60.1.41",
    "ext/lb": "192.0.2.10",
    "ext/payments": "192.0.2.20",
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    flows = tmp_path / "flows.jsonl"
    flows.write_text(record_lines(FlowRecord(s, d, p) for s, d, p in OBSERVED))
    return {"cluster": str(cluster), "flows": str(flows), "dir": str(tmp_path)}


def matrix_flows(run: Run, *files: str) -> dict[tuple[str, str, FlowPort], bool]:
    ports = [arg for port in PORTS for arg in ("--port", f"{port.port}/{port.protocol}")]
    code, out, err = run("matrix", *(arg for f in files for arg in ("-f", f)), *ports, "-o", "json")
    assert code == 0, err
    return {
        (f["from"], f["to"], FlowPort(Protocol(f["protocol"]), f["port"])): f["allowed"] for f in json.loads(out)["flows"]
    }


def expected_matrix(keys: Iterable[tuple[str, str, FlowPort]], egress: bool) -> dict[tuple[str, str, FlowPort], bool]:
    return {key: expected_verdict(*key, egress=egress) for key in keys}


@pytest.mark.parametrize("egress", [False, True])
def test_matrix_on_inventory_and_suggestion_allows_exactly_the_observed_flows_and_their_replicas(
    run: Run, files: dict[str, str], egress: bool
) -> None:
    code, out, err = run("suggest", "--flows", files["flows"], "-f", files["cluster"], *(["--egress"] if egress else []))
    assert code == 0, err
    policies = Path(files["dir"]) / "suggested.yaml"
    policies.write_text(out)
    code, valid, _ = run("validate", "-f", files["cluster"], "-f", str(policies))
    assert code == 0 and f"{12 if egress else 6} policies" in valid
    kernel_view = matrix_flows(run, files["cluster"], str(policies))
    assert kernel_view == expected_matrix(kernel_view.keys(), egress)


def test_output_is_deterministic_and_the_report_goes_to_stderr(run: Run, files: dict[str, str]) -> None:
    argv = ("suggest", "--flows", files["flows"], "-f", files["cluster"], "--egress")
    first, second = run(*argv), run(*argv)
    assert first == second
    code, out, err = first
    data = yaml.safe_load(out)
    assert data["kind"] == "List" and len(data["items"]) == 12
    web = next(i for i in data["items"] if i["metadata"]["name"] == "netfence-web-ingress")
    assert web == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"labels": {"app.kubernetes.io/managed-by": "netfence"}, "name": "netfence-web-ingress", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tools"}},
                            "podSelector": {"matchLabels": {"app": "toolbox"}},
                        }
                    ],
                    "ports": [{"port": 80, "protocol": "TCP"}],
                },
                {"from": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 80, "protocol": "TCP"}]},
            ],
        },
    }
    assert err.splitlines() == [
        "note: 2 workloads with no observed ingress: their policies admit nothing (shop/web-canary, tools/toolbox)",
        "note: 3 workloads with no observed egress: their policies admit nothing (shop/db-backend, shop/db-cache, shop/web-canary)",
        "suggest: 7 flow records, 7 distinct flows; 6 workloads in 2 namespaces; 12 NetworkPolicies",
        "check: every observed flow is allowed (7)",
        "check: 1 flow allowed but not observed, each between pods of the two workloads of an observed flow"
        " (a policy admits a workload, not one replica):",
        "  workloads tools/toolbox -> shop/web TCP/80 (observed: tools/toolbox -> shop/web-5d8f7-a1 TCP/80):"
        " tools/toolbox -> shop/web-5d8f7-b2",
        "check: no other flow between pods is allowed (judged 210 pod pairs and ports)",
    ]
    code, out, _ = run(*argv, "-o", "json")
    assert code == 0 and json.loads(out) == data


def test_conntrack_output_gives_the_same_policies_as_json_lines(run: Run, files: dict[str, str]) -> None:
    lines = []
    for n, (source, destination, port) in enumerate(OBSERVED):
        src, dst, proto = ADDRESSES[source], ADDRESSES[destination], port.protocol.value.lower()
        flags = "[ASSURED] " if port.protocol is Protocol.TCP else ""
        state = "TIME_WAIT " if port.protocol is Protocol.TCP else ""
        lines.append(
            f"ipv4     2 {proto}      6 117 {state}src={src} dst={dst} sport={40000 + n} dport={port.port} "
            f"src={dst} dst={src} sport={port.port} dport={40000 + n} {flags}mark=0 use=1"
        )
    conntrack = Path(files["dir"]) / "conntrack.txt"
    conntrack.write_text("\n".join(lines) + "\nconntrack v1.4.7 (conntrack-tools): 7 flow entries have been shown.\n")
    from_json = run("suggest", "--flows", files["flows"], "-f", files["cluster"], "--egress")
    from_conntrack = run("suggest", "--flows", str(conntrack), "-f", files["cluster"], "--egress")
    assert from_conntrack[0] == 0 and from_conntrack[1] == from_json[1]


def test_calico_suggestion_loads_and_allows_the_same_flows(run: Run, files: dict[str, str]) -> None:
    code, out, err = run("suggest", "--flows", files["flows"], "-f", files["cluster"], "--egress", "--kind", "calico")
    assert code == 0, err
    assert "12 Calico NetworkPolicies" in err
    policies = Path(files["dir"]) / "calico.yaml"
    policies.write_text(out)
    items = yaml.safe_load(out)["items"]
    assert {(i["apiVersion"], i["kind"]) for i in items} == {("projectcalico.org/v3", "NetworkPolicy")}
    web = next(i for i in items if i["metadata"]["name"] == "netfence-web-ingress")
    assert web["spec"]["selector"] == 'app == "web" && !has(track)'
    assert web["spec"]["ingress"][0] == {
        "action": "Allow",
        "protocol": "TCP",
        "source": {"namespaceSelector": 'kubernetes.io/metadata.name == "tools"', "selector": 'app == "toolbox"'},
        "destination": {"ports": [80]},
    }
    found = matrix_flows(run, files["cluster"], str(policies))
    assert found == expected_matrix(found.keys(), True)


def test_suggestion_from_stdin(run: Run, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(Path(files["flows"]).read_text()))
    code, out, _ = run("suggest", "--flows", "-", "-f", files["cluster"])
    assert code == 0 and len(yaml.safe_load(out)["items"]) == 6


def test_bad_flow_lines_exit_2_naming_each_line(run: Run, files: dict[str, str]) -> None:
    bad = Path(files["dir"]) / "bad.jsonl"
    bad.write_text('{"src": "shop/api-0", "dst": "shop/db-0", "port": 0}\n{"src": "x"}\n')
    code, out, err = run("suggest", "--flows", str(bad), "-f", files["cluster"])
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{bad}:1: port: expected a port number 1-65535, got 0",
        f"{bad}:2: src: expected namespace/pod, ext/NAME or an IP address, got 'x'",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "error: no flows: give --flows FILE|- (JSON lines or conntrack output; repeatable)"),
        (("--kind", "anp"), "error: --kind anp: not generated."),
        (("--flows", "/nonexistent/flows.jsonl"), "/nonexistent/flows.jsonl: cannot read flows:"),
    ],
)
def test_usage_errors_exit_2(run: Run, files: dict[str, str], argv: tuple[str, ...], message: str) -> None:
    code, out, err = run("suggest", "-f", files["cluster"], *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_lab_record_needs_a_positive_duration(run: Run) -> None:
    code, out, err = run("lab", "record", "--name", "nosuchlab", "--duration", "0")
    assert (code, out) == (2, "")
    assert err == "error: --duration: expected a positive number of seconds, got 0\n"
