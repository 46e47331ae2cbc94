"""The command-line contract: stdout, stderr and exit codes, run in-process through main(argv)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
import yaml

from netfence.cli.demo import scenario_dir
from netfence.cli.main import main

Run = Callable[..., tuple[int, str, str]]

COLORS = str(scenario_dir() / "colors")
WORDPRESS = scenario_dir() / "wordpress"
DEV_RED, DEV_BLUE, DEV_GREEN = "dev/red-778f756b64-g69gz", "dev/blue-786db8bbc8-pvz95", "dev/green-98c6b676d-45ktr"


def wordpress(*steps: str) -> list[str]:
    files = ["cluster.yaml", *steps]
    return [arg for f in files for arg in ("-f", str(WORDPRESS / f))]


# --- matrix -----------------------------------------------------------------------------------


def test_matrix_json_lists_every_ordered_pair_including_self_for_every_port(run: Run) -> None:
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80/TCP", "--port", "ICMP", "-o", "json")
    assert code == 0
    flows = json.loads(out)["flows"]
    assert len(flows) == 2 * 6 * 6
    assert set(flows[0]) == {"from", "to", "port", "protocol", "allowed"}
    by_key = {(f["from"], f["to"], f["port"], f["protocol"]): f["allowed"] for f in flows}
    assert by_key[(DEV_BLUE, DEV_RED, 80, "TCP")] is True
    assert by_key[(DEV_GREEN, DEV_RED, 80, "TCP")] is False
    assert by_key[(DEV_RED, DEV_GREEN, 80, "TCP")] is True
    assert by_key[(DEV_RED, DEV_BLUE, 80, "TCP")] is False
    assert by_key[(DEV_BLUE, DEV_RED, None, "ICMP")] is False
    assert by_key[(DEV_RED, DEV_RED, None, "ICMP")] is True


def test_matrix_defaults_to_every_declared_container_port(run: Run) -> None:
    code, out, _ = run("matrix", *wordpress(), "-o", "json")
    assert code == 0
    ports = {(f["port"], f["protocol"]) for f in json.loads(out)["flows"]}
    assert ports == {(80, "TCP"), (3306, "TCP")}


def test_matrix_csv_has_the_same_rows_as_json(run: Run) -> None:
    _, as_json, _ = run("matrix", "-f", COLORS, "--port", "80", "-o", "json")
    code, as_csv, _ = run("matrix", "-f", COLORS, "--port", "80", "-o", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    expected = [
        {"from": f["from"], "to": f["to"], "port": str(f["port"]), "protocol": f["protocol"], "allowed": str(f["allowed"]).lower()}
        for f in json.loads(as_json)["flows"]
    ]
    assert rows == expected


def test_matrix_table_shows_marks_and_a_summary_per_port(run: Run) -> None:
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80/TCP")
    assert code == 0
    assert "TCP/80: 28 of 36 flows allowed, 8 denied" in out
    red_row = next(line for line in out.splitlines() if line.strip().startswith(f"3 {DEV_RED}"))
    assert red_row.split()[2:] == ["·", "✓", "✓", "·", "·", "·"]


def test_matrix_table_stays_readable_at_thirty_pods(run: Run, write: Callable[[str, str], str]) -> None:
    pods = "\n---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{i:02d}, namespace: ns-{i % 3}}}\nstatus: {{podIP: 10.0.0.{i + 1}}}"
        for i in range(30)
    )
    code, out, _ = run("matrix", "-f", write("pods.yaml", pods), "--port", "80/TCP")
    assert code == 0
    rows = [line for line in out.splitlines() if "pod-" in line]
    assert len(rows) == 30
    assert all(len(line) <= 160 for line in out.splitlines())
    assert all(line.count("✓") == 30 for line in rows)


def test_matrix_namespace_flag_restricts_both_sides(run: Run) -> None:
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80", "-n", "dev", "-o", "json")
    assert code == 0
    flows = json.loads(out)["flows"]
    assert len(flows) == 9 and all(f["from"].startswith("dev/") and f["to"].startswith("dev/") for f in flows)


def test_matrix_without_ports_anywhere_is_a_usage_error(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("p.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    code, out, err = run("matrix", "-f", path)
    assert (code, out) == (2, "")
    assert err == "error: no ports to evaluate: the inventory declares no containerPorts; pass --port PORT/PROTO\n"


@pytest.mark.parametrize("port", ["80/ICMP", "0", "70000/TCP", "http/TCP"])
def test_matrix_rejects_a_bad_port_flag(run: Run, port: str) -> None:
    code, _, err = run("matrix", "-f", COLORS, "--port", port)
    assert code == 2 and err.startswith("error: --port: expected")


# --- query ------------------------------------------------------------------------------------


def test_query_allowed_exits_0_and_names_the_deciding_rule(run: Run) -> None:
    code, out, _ = run("query", "-f", COLORS, "--from", DEV_BLUE, "--to", DEV_RED, "--port", "80/TCP")
    assert code == 0
    assert out.splitlines()[0].split() == ["ALLOWED", DEV_BLUE, "->", DEV_RED, "TCP/80"]
    assert "allowed by NetworkPolicy dev/allow-tcp-80-from-blue-to-green ingress[0] (from[0], ports[0])" in out


def test_query_denied_exits_1_and_says_why(run: Run) -> None:
    code, out, _ = run("query", "-f", COLORS, "--from", DEV_GREEN, "--to", DEV_RED, "--port", "80/TCP")
    assert code == 1
    assert out.startswith("DENIED")
    assert f"{DEV_RED} is isolated for ingress by NetworkPolicy dev/allow-tcp-80-from-blue-to-green; no rule allows TCP/80 from {DEV_GREEN}" in out


def test_query_json_shape(run: Run) -> None:
    code, out, _ = run("query", "-f", COLORS, "--from", DEV_RED, "--to", DEV_BLUE, "--port", "80/TCP", "-o", "json")
    assert code == 1
    data = json.loads(out)
    assert (data["from"], data["to"], data["port"], data["protocol"], data["allowed"]) == (DEV_RED, DEV_BLUE, 80, "TCP", False)
    assert data["egress"] == {
        "endpoint": DEV_RED,
        "allowed": False,
        "reason": "isolated",
        "tier": "default",
        "isolated": True,
        "policies": ["NetworkPolicy dev/allow-tcp-80-from-blue-to-green"],
        "rule": None,
    }
    assert data["ingress"]["reason"] == "not-isolated" and data["ingress"]["isolated"] is False


def test_query_yaml_is_the_same_data_as_json(run: Run) -> None:
    args = ("query", "-f", COLORS, "--from", DEV_BLUE, "--to", DEV_RED, "--port", "80/TCP")
    _, as_json, _ = run(*args, "-o", "json")
    _, as_yaml, _ = run(*args, "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_query_by_pod_ip_and_to_an_outside_address(run: Run) -> None:
    code, out, _ = run("query", "-f", COLORS, "--from", "10.244.4.6", "--to", "8.8.8.8", "--port", "53/UDP", "-o", "json")
    assert code == 1  # dev/red may only reach dev/green
    data = json.loads(out)
    assert (data["from"], data["to"]) == (DEV_RED, "8.8.8.8")
    assert data["ingress"]["reason"] == "not-an-endpoint"


def test_query_to_a_service_resolves_backends_and_named_target_port(run: Run) -> None:
    argv = wordpress("step1-default-deny.yaml", "step2-allow-frontend.yaml")
    code, out, _ = run("query", *argv, "--from", "tools/toolbox", "--to", "svc/wordpress/wordpress", "--port", "80/TCP", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["service"], data["allowed"]) == ("wordpress/wordpress", True)
    (backend,) = data["backends"]
    assert (backend["to"], backend["port"]) == ("wordpress/wordpress-7d5f9c6b8-x2k4q", 80)


def test_query_to_a_service_cluster_ip_is_the_service(run: Run) -> None:
    argv = wordpress("step1-default-deny.yaml", "step2-allow-frontend.yaml", "step3-allow-mysql-from-frontend.yaml")
    code, out, _ = run("query", *argv, "--from", "tools/toolbox", "--to", "10.43.0.33", "--port", "3306/TCP")
    assert code == 1
    assert out.splitlines()[0] == "service wordpress/mysql TCP/3306: 1 backend"


def test_query_service_port_that_does_not_exist_is_a_usage_error(run: Run) -> None:
    code, _, err = run("query", *wordpress(), "--from", "tools/toolbox", "--to", "svc/wordpress/mysql", "--port", "80/TCP")
    assert code == 2
    assert err == "error: --port: service wordpress/mysql has no port TCP/80 (its ports: 3306/TCP)\n"


def test_query_unknown_pod_is_a_usage_error(run: Run) -> None:
    code, out, err = run("query", "-f", COLORS, "--from", "dev/nope", "--to", DEV_RED, "--port", "80")
    assert (code, out) == (2, "")
    assert err.startswith("error: --from: no pod dev/nope in the inventory")


def test_query_namespace_flag_completes_bare_pod_names(run: Run) -> None:
    code, _, _ = run("query", "-f", COLORS, "-n", "dev", "--from", DEV_BLUE.split("/")[1], "--to", DEV_RED.split("/")[1], "--port", "80")
    assert code == 0


# --- explain and validate ---------------------------------------------------------------------


def test_explain_describes_each_policy_in_plain_words(run: Run) -> None:
    code, out, _ = run("explain", "-f", COLORS)
    assert code == 0
    assert out.splitlines() == [
        "namespace dev",
        "  NetworkPolicy allow-tcp-80-from-blue-to-green: applies to pods app=red, environment=dev in dev (1 pod)",
        "    ingress  accept TCP 80 from pods environment=dev, app=blue in dev; all other ingress is denied",
        "    egress   accept TCP 80 to pods environment=dev, app=green in dev; all other egress is denied",
    ]


def test_explain_json_groups_by_namespace_and_lists_selected_pods(run: Run) -> None:
    code, out, _ = run("explain", *wordpress("step1-default-deny.yaml", "step3-allow-mysql-from-frontend.yaml"), "-o", "json")
    assert code == 0
    policies = json.loads(out)["policies"]
    assert [(p["namespace"], p["name"]) for p in policies] == [("wordpress", "allow-mysql-from-frontend"), ("wordpress", "default-deny")]
    assert policies[1]["selects"] == ["wordpress/wordpress-7d5f9c6b8-x2k4q", "wordpress/wordpress-mysql-0"]
    assert policies[1]["ingress"] == "all ingress is denied"
    assert policies[0]["ingress"] == "accept TCP 3306 from pods tier=frontend in wordpress; all other ingress is denied"


def test_validate_reports_counts(run: Run) -> None:
    code, out, _ = run("validate", "-f", COLORS)
    assert code == 0
    assert out == "valid: 9 objects (2 namespaces, 6 pods, 0 services, 1 policies)\n"


def test_invalid_input_exits_2_with_one_line_per_problem_and_no_traceback(run: Run, write: Callable[[str, str], str]) -> None:
    path = write(
        "policies.yaml",
        """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: allow-web
          namespace: dev
        spec:
          podSelector: {}
          ingress:
          - from:
            - podSelector: {}
            ports:
            - protocol: TCP
              port: 70000
        """,
    )
    for verb in (["validate"], ["matrix", "--port", "80"], ["explain"], ["query", "--from", "1.1.1.1", "--to", "2.2.2.2", "--port", "80"]):
        code, out, err = run(*verb, "-f", path)
        assert (code, out) == (2, ""), verb
        assert err == (
            f"{path}:13: NetworkPolicy dev/allow-web: spec.ingress[0].ports[0].port: "
            "expected a port number 1-65535 or a port name (IANA service name), got 70000\n"
        )


def test_skipped_kinds_warn_on_stderr_once_per_kind(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("x.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n")
    code, out, err = run("validate", "-f", path)
    assert code == 0
    assert err == "warning: skipped 2 Deployment objects (apps/v1): kind not understood\n"


def test_missing_input_is_a_usage_error(run: Run) -> None:
    code, _, err = run("matrix")
    assert code == 2 and err == "error: no input: give -f FILE|DIR|- (repeatable)\n"


def test_unknown_verb_exits_2(run: Run) -> None:
    code, _, _ = run("frobnicate")
    assert code == 2


def test_python_dash_m_netfence_reads_stdin() -> None:
    text = (scenario_dir() / "colors" / "cluster.yaml").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "netfence", "validate", "-f", "-"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("valid: 8 objects")


# --- host endpoints ---------------------------------------------------------------------------

HOST_ENDPOINT = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.1.0.1}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {role: node}}
spec: {node: node-a, interfaceName: eth0, expectedIPs: [192.168.10.11]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: hosts-ssh}
spec:
  selector: role == 'node'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [22]}
"""


def test_query_reaches_a_host_endpoint_by_name_or_address(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("hep.yaml", HOST_ENDPOINT)
    code, out, _ = run("query", "-f", path, "--from", "shop/web", "--to", "hep/node-a-eth0", "--port", "22/TCP")
    assert code == 0 and "allowed by GlobalNetworkPolicy hosts-ssh ingress[0] (ports[0]) in tier default" in out
    code, out, _ = run("query", "-f", path, "--from", "shop/web", "--to", "192.168.10.11", "--port", "80/TCP", "-o", "json")
    assert code == 1
    data = json.loads(out)
    assert data["to"] == "hep/node-a-eth0" and data["ingress"]["reason"] == "isolated"


def test_a_host_endpoint_no_policy_selects_denies_by_default(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("hep.yaml", HOST_ENDPOINT)
    code, out, _ = run("query", "-f", path, "--from", "hep/node-a-eth0", "--to", "shop/web", "--port", "80/TCP")
    assert code == 1
    assert "denied: no policy selects hep/node-a-eth0 for egress; a host endpoint denies by default" in out


def test_matrix_lists_pods_not_host_endpoints(run: Run, write: Callable[[str, str], str]) -> None:
    path = write("hep.yaml", HOST_ENDPOINT)
    code, out, _ = run("matrix", "-f", path, "--port", "22/TCP", "-o", "csv")
    assert code == 0
    assert out.splitlines() == ["from,to,port,protocol,allowed", "shop/web,shop/web,22,TCP,true"]


# A short run is mostly start-up: a verb imports its own module and what it uses, nothing else.
_IMPORTS = """
import sys
from netfence.cli.main import main
code = main(sys.argv[1:])
tops = {m.split(".")[0] for m in sys.modules}
print(sorted(m for m in sys.modules if m.startswith("netfence.cli.")), sorted(t for t in ("rich", "lark", "kubernetes", "numpy") if t in tops))
"""


def _imported(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-c", _IMPORTS, *argv], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_a_verb_imports_only_its_own_module_and_what_it_uses() -> None:
    colors = str(scenario_dir() / "colors")
    assert _imported("matrix", "-f", colors, "--port", "80", "-o", "summary") == (
        "['netfence.cli.common', 'netfence.cli.main', 'netfence.cli.matrix'] ['numpy']"
    )
    assert _imported("selector", "match", "app == 'a'", "--labels", "app=a") == (
        "['netfence.cli.main', 'netfence.cli.selector'] ['lark']"
    )


def test_help_lists_every_verb(run: Run) -> None:
    code, out, _ = run("--help")
    assert code == 0
    listed = re.findall(r"^    ([a-z]+)\b", out, flags=re.MULTILINE)
    assert listed == ["validate", "query", "matrix", "explain", "compile", "isolate", "demo", "lab", "selector",
                      "diff", "lint", "inventory", "report", "suggest", "agent", "flows"]  # fmt: skip


def test_version_is_printed_without_any_verb() -> None:
    done = subprocess.run([sys.executable, "-m", "netfence", "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"netfence \d+\.\d+\.\d+\n", done.stdout)
