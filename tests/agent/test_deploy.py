"""deploy/ stays in step with the agent: the ClusterRole grants get/list/watch on exactly the kinds
the agent watches, and the DaemonSet asks for no more privilege than nftables needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from netfence.sources.kube_api import resources

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_the_cluster_role_reads_exactly_the_kinds_the_agent_watches() -> None:
    role = next(d for d in documents("rbac.yaml") if d["kind"] == "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert sorted(rule["verbs"]) == ["get", "list", "watch"]
        granted |= {(group, resource) for group in rule["apiGroups"] for resource in rule["resources"]}
    watched = {(r.group, r.plural) for calico in ("crd", "v3") for r in resources(calico)}
    assert granted == watched


def test_the_daemonset_runs_in_the_node_network_namespace_with_net_admin_only() -> None:
    (daemonset,) = documents("daemonset.yaml")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["serviceAccountName"] == "netfence-agent"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["privileged"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert security["runAsNonRoot"] is True
    assert "--metrics-addr=127.0.0.1:9617" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
