"""netfence isolate: the generated policies, applied beside the inventory, give the isolation.

Each test writes what `isolate` printed to a file and loads it together with the inventory
through the real CLI, as `kubectl apply -f -` would add it to the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from clusters import namespace, pod, to_yaml

Run = Callable[..., tuple[int, str, str]]
Write = Callable[[str, str], str]

PROJECT = "field.cattle.io/projectId"
BY_PROJECT = ("--by", "namespace-label", PROJECT)


def projects() -> str:
    """Project A (a1, a2), project B (b1), the system project (sys) and a namespace in none."""
    return to_yaml(
        namespace("a1", {PROJECT: "p-a"}),
        namespace("a2", {PROJECT: "p-a"}),
        namespace("b1", {PROJECT: "p-b"}),
        namespace("sys", {PROJECT: "p-sys"}),
        namespace("plain"),
        pod("a1", "web", {"app": "web"}, "10.0.1.1"),
        pod("a2", "api", {"app": "api"}, "10.0.2.1"),
        pod("b1", "web", {"app": "web"}, "10.0.3.1"),
        pod("sys", "monitor", {"app": "monitor"}, "10.0.9.1"),
        pod("plain", "tool", {"app": "tool"}, "10.0.8.1"),
        pod("sys", "ingress", {"app": "ingress"}, "192.168.0.11", hostNetwork=True, nodeName="node-1"),
    )


def stacks() -> str:
    return to_yaml(
        pod("ns1", "web", {"stack": "shop"}, "10.0.1.1"),
        pod("ns1", "db", {"stack": "shop"}, "10.0.1.2"),
        pod("ns1", "blog", {"stack": "blog"}, "10.0.1.3"),
        pod("ns2", "api", {"stack": "shop"}, "10.0.2.1"),
        pod("ns2", "tool", {}, "10.0.2.2"),
    )


def isolate(run: Run, tmp_path: Path, inventory: str, *args: str) -> tuple[str, str]:
    """Run isolate on `inventory`; return the file holding its output, and its stderr."""
    code, out, err = run("isolate", "-f", inventory, *args)
    assert code == 0, err
    path = tmp_path / "isolation.yaml"
    path.write_text(out)
    return str(path), err


def reach(run: Run, *files: str) -> dict[tuple[str, str], bool]:
    """(from, to) -> allowed on TCP/80, from `matrix -o json` over the files."""
    args = [arg for f in files for arg in ("-f", f)]
    code, out, err = run("matrix", *args, "--port", "80/TCP", "-o", "json")
    assert code == 0, err
    return {(f["from"], f["to"]): f["allowed"] for f in json.loads(out)["flows"]}


# --- namespace-label: project isolation -------------------------------------------------------


def test_projects_reach_only_themselves_and_the_system_project_reaches_everything(
    run: Run, write: Write, tmp_path: Path
) -> None:
    inventory = write("cluster.yaml", projects())
    before = reach(run, inventory)
    assert all(before.values())  # no policy yet: everything reaches everything
    generated, _ = isolate(run, tmp_path, inventory, *BY_PROJECT, "--system-project", "p-sys")
    after = reach(run, inventory, generated)
    # Project A's namespaces reach each other.
    assert after[("a1/web", "a2/api")] and after[("a2/api", "a1/web")]
    # Projects A and B are isolated from each other, both ways.
    assert not after[("b1/web", "a1/web")] and not after[("b1/web", "a2/api")]
    assert not after[("a1/web", "b1/web")] and not after[("a2/api", "b1/web")]
    # The system project reaches every project and is reached by every namespace (not isolated).
    for pod_id in ("a1/web", "a2/api", "b1/web", "plain/tool"):
        assert after[("sys/monitor", pod_id)]
        assert after[(pod_id, "sys/monitor")]
    # A namespace in no project is not isolated, and no project admits it.
    assert after[("a1/web", "plain/tool")] and after[("b1/web", "plain/tool")]
    assert not after[("plain/tool", "a1/web")] and not after[("plain/tool", "b1/web")]
    # Only ingress is restricted: every flow the policies deny is one into an isolated project.
    denied = {pair for pair, allowed in after.items() if not allowed}
    assert {to for _, to in denied} == {"a1/web", "a2/api", "b1/web"}


def test_without_a_system_project_the_system_namespaces_are_one_more_project(
    run: Run, write: Write, tmp_path: Path
) -> None:
    inventory = write("cluster.yaml", projects())
    generated, _ = isolate(run, tmp_path, inventory, *BY_PROJECT)
    after = reach(run, inventory, generated)
    assert not after[("sys/monitor", "a1/web")]
    assert not after[("a1/web", "sys/monitor")]
    assert after[("a1/web", "a2/api")]


def test_project_policies_are_the_rancher_np_default_shape_with_a_netfence_name_and_label(
    run: Run, write: Write, tmp_path: Path
) -> None:
    generated, _ = isolate(run, tmp_path, write("cluster.yaml", projects()), *BY_PROJECT, "--system-project", "p-sys")
    manifest = yaml.safe_load(Path(generated).read_text())
    assert manifest["apiVersion"] == "v1" and manifest["kind"] == "List"
    names = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in manifest["items"]]
    assert names == [
        ("a1", "netfence-isolation"),
        ("a1", "netfence-isolation-nodes"),
        ("a2", "netfence-isolation"),
        ("a2", "netfence-isolation-nodes"),
        ("b1", "netfence-isolation"),
        ("b1", "netfence-isolation-nodes"),
    ]
    first = manifest["items"][0]
    assert first["apiVersion"] == "networking.k8s.io/v1" and first["kind"] == "NetworkPolicy"
    assert first["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "netfence"}
    assert first["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {PROJECT: "p-a"}}},
                    {"namespaceSelector": {"matchLabels": {PROJECT: "p-sys"}}},
                ]
            }
        ],
    }
    nodes = manifest["items"][1]["spec"]
    assert nodes["podSelector"] == {} and nodes["ingress"] == [{"from": [{"ipBlock": {"cidr": "192.168.0.11/32"}}]}]


def test_unlabelled_and_system_namespaces_are_named_on_stderr(run: Run, write: Write, tmp_path: Path) -> None:
    _, err = isolate(run, tmp_path, write("cluster.yaml", projects()), *BY_PROJECT, "--system-project", "p-sys")
    lines = err.splitlines()
    assert any(line.startswith("note: 1 namespace without label field.cattle.io/projectId left unisolated") and line.endswith(": plain") for line in lines)
    assert any("system project field.cattle.io/projectId=p-sys left unisolated" in line and line.endswith(": sys") for line in lines)


def test_node_addresses_reach_isolated_pods_unless_no_nodes(run: Run, write: Write, tmp_path: Path) -> None:
    inventory = write("cluster.yaml", projects())
    generated, _ = isolate(run, tmp_path, inventory, *BY_PROJECT, "--system-project", "p-sys")
    # 192.168.0.11 is node-1's address (the hostNetwork ingress pod's IP).
    code, out, _ = run("query", "-f", inventory, "-f", generated, "--from", "192.168.0.11", "--to", "a1/web", "--port", "80")
    assert code == 0, out
    assert "NetworkPolicy a1/netfence-isolation-nodes ingress[0]" in out
    code, out, _ = run("isolate", "-f", inventory, *BY_PROJECT, "--system-project", "p-sys", "--no-nodes")
    assert "netfence-isolation-nodes" not in out
    without = write("without-nodes.yaml", out)
    code, _, _ = run("query", "-f", inventory, "-f", without, "--from", "192.168.0.11", "--to", "a1/web", "--port", "80")
    assert code == 1


def test_without_node_addresses_the_nodes_policy_is_left_out_with_a_note(run: Run, write: Write) -> None:
    inventory = write("cluster.yaml", to_yaml(namespace("a1", {PROJECT: "p-a"}), pod("a1", "web", ip="10.0.1.1")))
    code, out, err = run("isolate", "-f", inventory, *BY_PROJECT)
    assert code == 0
    assert [i["metadata"]["name"] for i in yaml.safe_load(out)["items"]] == ["netfence-isolation"]
    assert "netfence-isolation-nodes not generated" in err


def test_a_key_no_namespace_carries_gives_an_empty_list_and_a_warning(run: Run, write: Write) -> None:
    code, out, err = run("isolate", "-f", write("cluster.yaml", projects()), "--by", "namespace-label", "team")
    assert code == 0
    assert yaml.safe_load(out) == {"apiVersion": "v1", "kind": "List", "items": []}
    assert "warning: no namespace carries label team; nothing to isolate" in err


def test_a_system_project_no_namespace_carries_is_warned_about(run: Run, write: Write) -> None:
    code, _, err = run("isolate", "-f", write("cluster.yaml", projects()), *BY_PROJECT, "--system-project", "p-typo")
    assert code == 0
    assert "warning: --system-project: no namespace carries field.cattle.io/projectId=p-typo" in err


# --- pod-label: stack isolation ---------------------------------------------------------------


def test_pods_of_a_stack_reach_each_other_across_namespaces_and_nothing_else_reaches_them(
    run: Run, write: Write, tmp_path: Path
) -> None:
    inventory = write("cluster.yaml", stacks())
    generated, err = isolate(run, tmp_path, inventory, "--by", "pod-label", "stack")
    after = reach(run, inventory, generated)
    shop = ("ns1/web", "ns1/db", "ns2/api")
    for a in shop:
        for b in shop:
            assert after[(a, b)], (a, b)
        assert not after[("ns1/blog", a)] and not after[(a, "ns1/blog")]
        # An unlabelled pod is in no stack: not isolated, admitted by none.
        assert not after[("ns2/tool", a)] and after[(a, "ns2/tool")]
    assert not after[("ns2/tool", "ns1/blog")] and after[("ns1/blog", "ns2/tool")]
    assert "note: 1 pod (ns2/tool) without label stack left unisolated" in err


def test_stack_policies_are_one_per_namespace_and_value(run: Run, write: Write, tmp_path: Path) -> None:
    generated, _ = isolate(run, tmp_path, write("cluster.yaml", stacks()), "--by", "pod-label", "stack")
    items = yaml.safe_load(Path(generated).read_text())["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("ns1", "netfence-stack-blog"),
        ("ns1", "netfence-stack-shop"),
        ("ns2", "netfence-stack-shop"),
    ]
    assert items[1]["spec"] == {
        "podSelector": {"matchLabels": {"stack": "shop"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"stack": "shop"}}}]}],
    }


# --- the output as a manifest ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_output_loads_as_input(run: Run, write: Write, fmt: str) -> None:
    code, out, _ = run("isolate", "-f", write("cluster.yaml", projects()), *BY_PROJECT, "--system-project", "p-sys", "-o", fmt)
    assert code == 0
    code, valid, err = run("validate", "-f", write(f"isolation.{fmt}", out))
    assert code == 0, err
    assert "6 policies" in valid


def test_json_holds_the_same_objects_as_yaml(run: Run, write: Write) -> None:
    inventory = write("cluster.yaml", stacks())
    _, as_yaml, _ = run("isolate", "-f", inventory, "--by", "pod-label", "stack")
    _, as_json, _ = run("isolate", "-f", inventory, "--by", "pod-label", "stack", "-o", "json")
    assert json.loads(as_json) == yaml.safe_load(as_yaml)


def test_output_is_deterministic_whatever_the_input_order(run: Run, write: Write) -> None:
    objects = [
        namespace("b1", {PROJECT: "p-b"}),
        namespace("a1", {PROJECT: "p-a"}),
        pod("sys", "ingress", ip="192.168.0.12", hostNetwork=True),
        pod("sys", "proxy", ip="192.168.0.11", hostNetwork=True),
        pod("a1", "web", ip="10.0.1.1"),
    ]
    forward = write("forward.yaml", to_yaml(*objects))
    backward = write("backward.yaml", to_yaml(*reversed(objects)))
    _, first, _ = run("isolate", "-f", forward, *BY_PROJECT)
    _, again, _ = run("isolate", "-f", forward, *BY_PROJECT)
    _, reordered, _ = run("isolate", "-f", backward, *BY_PROJECT)
    assert first == again == reordered
    assert "192.168.0.11/32" in first and first.index("192.168.0.11/32") < first.index("192.168.0.12/32")


def test_isolating_again_with_the_generated_policies_loaded_changes_nothing(
    run: Run, write: Write, tmp_path: Path
) -> None:
    inventory = write("cluster.yaml", projects())
    generated, _ = isolate(run, tmp_path, inventory, *BY_PROJECT, "--system-project", "p-sys")
    code, again, _ = run("isolate", "-f", inventory, "-f", generated, *BY_PROJECT, "--system-project", "p-sys")
    assert code == 0
    assert again == Path(generated).read_text()


# --- bad usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "message"),
    [
        (["--by", "namespace"], "error: --by: expected namespace-label KEY or pod-label KEY, got 'namespace'"),
        (["--by", "namespace-label"], "error: --by namespace-label: missing the label key (namespace-label KEY)"),
        (["--by", "pod-label", "a", "b"], "error: --by pod-label: expected one label key, got 2: a b"),
        (["--by", "pod-label", "bad key"], "error: --by pod-label: expected a label key ([prefix/]name), got 'bad key'"),
        (["--by", "pod-label", "Example.com/x"], "error: --by pod-label: expected a label key ([prefix/]name), got 'Example.com/x'"),
        ([], "error: --by is required: namespace-label KEY or pod-label KEY"),
        (
            ["--by", "pod-label", "stack", "--system-project", "p-sys"],
            "error: --system-project applies to --by namespace-label only",
        ),
        (
            ["--by", "namespace-label", PROJECT, "--system-project", "p sys"],
            "error: --system-project: expected a label value, got 'p sys'",
        ),
    ],
)
def test_bad_usage_exits_2_with_one_line(run: Run, write: Write, by: list[str], message: str) -> None:
    code, out, err = run("isolate", "-f", write("cluster.yaml", projects()), *by)
    assert code == 2
    assert out == ""
    assert err == message + "\n"
