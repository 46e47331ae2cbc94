"""compile --log/--audit, query and matrix --audit, flows arguments: in-process."""

from __future__ import annotations

import json
from collections.abc import Callable

from flowlog_cluster import CLUSTER

Run = Callable[..., tuple[int, str, str]]
Write = Callable[[str, str], str]


def test_compile_log_options_render_log_chains_and_default_output_is_unchanged(run: Run, write: Write) -> None:
    path = write("c.yaml", CLUSTER)
    code, plain, _ = run("compile", "-f", path, "--node", "node-a")
    assert code == 0 and "log group" not in plain
    code, logged, _ = run("compile", "-f", path, "--node", "node-a", "--log", "--log-group", "9", "--log-rate", "0")
    assert code == 0
    assert 'log group 9 prefix "netfence:Di:' in logged and "limit rate" not in logged and "log_a_" not in logged
    code, allowed, _ = run("compile", "-f", path, "--node", "node-a", "--log-allowed")
    assert code == 0 and "ct state new limit rate 20/second burst 40 packets log group 5" in allowed
    code, audited, _ = run("compile", "-f", path, "--node", "node-a", "--audit", "deny-x")
    assert code == 0 and "in_c1_t0_audit" in audited and "netfence:Ui:" in audited and "netfence:Di:" not in audited


def test_compile_refuses_logging_for_a_host_and_unknown_audited_policies(run: Run, write: Write) -> None:
    path = write("c.yaml", CLUSTER)
    code, _, err = run("compile", "-f", path, "--audit", "shop/nope")
    assert code == 2 and err.startswith("error: --audit shop/nope: no such policy")
    code, _, err = run("compile", "-f", path, "--log-group", "70000")
    assert code == 2 and "expected an NFLOG group 0-65535" in err


def test_query_with_audit_shows_the_enforced_and_the_audit_verdict(run: Run, write: Write) -> None:
    path = write("c.yaml", CLUSTER)
    args = ("query", "-f", path, "--from", "shop/x-far", "--to", "shop/d-near", "--port", "80/TCP")
    code, out, _ = run(*args)
    assert code == 1 and out.startswith("DENIED")
    code, out, _ = run(*args, "--audit", "AdminNetworkPolicy/deny-x")
    # Enforced as if absent: allowed, exit 0; the audit verdict names the audited rule.
    assert code == 0 and out.startswith("ALLOWED")
    audit = out.split("audit: with AdminNetworkPolicy deny-x enforced\n")[1]
    assert audit.startswith("DENIED") and 'denied by AdminNetworkPolicy deny-x ingress[0] "no-x"' in audit
    code, out, _ = run(*args, "--audit", "deny-x", "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["allowed"] is True
    assert data["audit"]["policies"] == ["AdminNetworkPolicy deny-x"] and data["audit"]["allowed"] is False
    assert data["audit"]["verdict"]["ingress"]["rule"]["name"] == "deny-x"


def test_matrix_with_audit_lists_the_flows_the_audited_policy_would_change(run: Run, write: Write) -> None:
    path = write("c.yaml", CLUSTER)
    code, out, _ = run("matrix", "-f", path, "--port", "80/TCP", "--audit", "shop/b-from-a", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["audit"] == ["NetworkPolicy shop/b-from-a"]
    changed = {(f["from"], f["to"]) for f in data["flows"] if f["allowed"] != f["audit"]}
    # Without b-from-a, b is not isolated: d-near, x-far and b itself... everyone but c reaches b.
    assert changed == {("shop/d-near", "shop/b-near"), ("shop/x-far", "shop/b-near")}
    assert all(f["allowed"] and not f["audit"] for f in data["flows"] if (f["from"], f["to"]) in changed)
    code, out, _ = run("matrix", "-f", path, "--port", "80/TCP", "--audit", "shop/b-from-a")
    assert code == 0
    assert "audit: with NetworkPolicy shop/b-from-a enforced, 2 allowed flows would be denied and 0 denied flows allowed" in out
    assert "  shop/x-far -> shop/b-near  TCP/80: allowed now, denied under audit" in out
    code, out, _ = run("matrix", "-f", path, "--port", "80/TCP", "--audit", "shop/b-from-a", "-o", "csv")
    assert out.splitlines()[0] == "from,to,port,protocol,allowed,audit"
    assert "shop/x-far,shop/b-near,80,TCP,true,false" in out.splitlines()


def test_flows_arguments_are_checked(run: Run) -> None:
    code, _, err = run("flows", "--group", "x")
    assert code == 2 and "expected an NFLOG group 0-65535" in err
    code, _, err = run("flows", "--netns", "a", "--lab", "b")
    assert code == 2 and "not allowed with argument" in err
    code, _, err = run("flows", "--count", "0")
    assert code == 2 and "expected a positive whole number" in err
