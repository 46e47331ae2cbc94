"""netfence lint on the command line: output shapes, lines of the field at fault, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable

from lint_support import SHOP

from netfence.analysis.lint import CHECKS
from netfence.cli.demo import scenario_dir

Run = Callable[..., tuple[int, str, str]]
Write = Callable[[str, str], str]

INGRESS = scenario_dir() / "ingress-controller"

TWO_PEERS_FINDINGS = [
    {
        "code": "peer-matches-nothing",
        "severity": "warning",
        "file": str(INGRESS / "two-peers.yaml"),
        "line": 15,
        "object": "NetworkPolicy prod/allow-ingress-controller",
        "message": "ingress[0].from[1] matches no pod: podSelector app=nginx-ingress, component=controller "
        "matches no pod in namespace prod",
        "hint": "compare the selectors with the labels of the pods and namespaces; a peer that matches nothing "
        "has no effect",
    },
    {
        "code": "split-peers",
        "severity": "warning",
        "file": str(INGRESS / "two-peers.yaml"),
        "line": 15,
        "object": "NetworkPolicy prod/allow-ingress-controller",
        "message": "ingress[0].from[0] and from[1] are two peers (either admits): every pod of the namespaces "
        "matching project=kube-system, and pods app=nginx-ingress, component=controller of namespace prod; one "
        "peer with both selectors would admit only pods app=nginx-ingress, component=controller in those "
        "namespaces; no pod of prod matches the podSelector, but one in the selected namespaces does "
        "(kube-system/nginx-ingress-controller-5b8c9): one peer was likely meant",
        "hint": "if one peer was meant, put namespaceSelector and podSelector in one list item (remove the `-` "
        "before the second selector)",
    },
]


def test_json_lists_every_finding_with_its_exact_fields(run: Run) -> None:
    code, out, err = run("lint", "-f", str(INGRESS / "cluster.yaml"), "-f", str(INGRESS / "two-peers.yaml"), "-o", "json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {"findings": TWO_PEERS_FINDINGS}


def test_no_findings_exit_zero(run: Run) -> None:
    code, out, _ = run("lint", "-f", str(INGRESS / "cluster.yaml"), "-f", str(INGRESS / "one-peer.yaml"), "-o", "json")
    assert (code, json.loads(out)) == (0, {"findings": []})
    code, out, _ = run("lint", "-f", str(INGRESS / "cluster.yaml"), "-f", str(INGRESS / "one-peer.yaml"))
    assert (code, out) == (0, "no findings\n")


def test_the_table_shows_where_what_and_how_to_fix(run: Run) -> None:
    code, out, _ = run("lint", "-f", str(INGRESS / "cluster.yaml"), "-f", str(INGRESS / "two-peers.yaml"))
    assert code == 1
    blocks = out.split("\n\n")
    assert blocks[1].splitlines() == [
        f"{INGRESS / 'two-peers.yaml'}:15: warning split-peers: NetworkPolicy prod/allow-ingress-controller",
        "  " + TWO_PEERS_FINDINGS[1]["message"],
        "  hint: " + TWO_PEERS_FINDINGS[1]["hint"],
    ]
    assert out.endswith("\n2 findings: 2 warnings\n")


def test_info_findings_alone_exit_zero(run: Run, write: Write) -> None:
    policy = write(
        "p.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: shop}
        spec: {podSelector: {}}
        """,
    )
    code, out, _ = run("lint", "-f", policy, "-o", "json")
    findings = json.loads(out)["findings"]
    assert code == 0
    assert [(f["code"], f["severity"], f["file"], f["line"], f["object"]) for f in findings] == [
        ("no-pods", "info", None, None, "inventory")
    ]


def test_an_error_exits_one(run: Run, write: Write) -> None:
    policy = write(
        "p.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: shop}
        spec:
          podSelector: {}
          policyTypes: [Ingress]
          egress:
          - {}
        """,
    )
    code, out, _ = run("lint", "-f", policy, "-o", "json", "--ignore", "no-pods")
    assert code == 1
    assert [(f["code"], f["severity"], f["line"]) for f in json.loads(out)["findings"]] == [("rules-ignored", "error", 7)]


def test_ignore_skips_a_check_and_rejects_unknown_codes(run: Run) -> None:
    files = ("-f", str(INGRESS / "cluster.yaml"), "-f", str(INGRESS / "two-peers.yaml"))
    code, out, _ = run("lint", *files, "-o", "json", "--ignore", "split-peers", "--ignore", "peer-matches-nothing")
    assert (code, json.loads(out)) == (0, {"findings": []})
    code, out, err = run("lint", *files, "--ignore", "split-peer")
    assert code == 2 and out == ""
    assert err.startswith("error: --ignore split-peer: no such check (expected one of: selects-nothing, ")


def test_calico_types_omitted_is_reported_for_the_crd_group_only(run: Run, write: Write) -> None:
    def gnp(api: str) -> str:
        return f"""
        apiVersion: {api}
        kind: GlobalNetworkPolicy
        metadata: {{name: deny-in}}
        spec:
          selector: app == 'web'
          ingress:
          - action: Deny
        """

    cluster = write("cluster.yaml", SHOP)
    code, out, _ = run("lint", "-f", cluster, "-f", write("crd.yaml", gnp("crd.projectcalico.org/v1")), "-o", "json")
    found = [f for f in json.loads(out)["findings"] if f["code"] == "calico-types-omitted"]
    assert code == 1
    assert [(f["object"], f["line"], f["hint"]) for f in found] == [
        ("GlobalNetworkPolicy deny-in", 5, "set spec.types: [Ingress]")
    ]
    code, out, _ = run("lint", "-f", cluster, "-f", write("v3.yaml", gnp("projectcalico.org/v3")), "-o", "json")
    assert [f for f in json.loads(out)["findings"] if f["code"] == "calico-types-omitted"] == []


def test_every_check_has_a_unique_code_and_the_help_lists_them(run: Run) -> None:
    codes = [c.code for c in CHECKS]
    assert len(set(codes)) == len(codes)
    code, out, _ = run("lint", "--help")
    assert code == 0
    assert all(c in " ".join(out.split()) for c in codes)


def test_bad_input_exits_two_like_every_verb(run: Run, write: Write) -> None:
    bad = write("bad.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelecter: x}\n")
    code, out, err = run("lint", "-f", bad)
    assert code == 2 and out == ""
    assert "podSelecter" in err
