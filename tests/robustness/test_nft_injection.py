"""Nothing from the input reaches nft (or a shell) as syntax.

A cluster of every policy kind is loaded with plain placeholder names, then every placeholder —
namespaces, pod names, policy names, label keys and values, a port name, a Calico tier, rule names —
is replaced in the model by a hostile string full of quotes, semicolons, braces, newlines, tabs and
`#` (the loader refuses most of these; the compiler must not depend on it), and once more by the
same strings with their unsafe characters sanitized. The two rendered tables are the same table:
set names are digests and comments are reduced to a safe alphabet, so a hostile character can only
change a set's digest (normalized here) — never a statement, a chain or an element. In a throwaway
network namespace (marked lab) the kernel accepts the hostile ruleset (`nft --check`, then one
transaction), and what it holds is rule for rule, set for set and comment for comment what it holds
for the sanitized one.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from netfence.dataplane.apply import apply_script, run_nft
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.objects import _COMMENT_UNSAFE, AddressSet, Chain, Rule, Table, comment, transition_script
from netfence.ir.build import build_ruleset
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.sources.documents import Source, parse_source
from netfence.sources.load import build_inventory

SRC = Path(__file__).resolve().parents[2] / "src" / "netfence"

#: Placeholder -> hostile suffix. Each hostile string keeps its placeholder as a prefix, so names
#: sort the same way in both clusters (tiers, classes and policies are ordered by name).
HOSTILE = {
    "qa00q": '"; flush ruleset; #',
    "qa01q": "}\n\tchain evil { type filter hook input priority 0; policy drop; }\n#",
    "qa02q": '" } ; accept #',
    "qa03q": '{"}; drop',
    "qa04q": "' $(reboot) `id`",
    "qa05q": "\ncounter accept",
    "qa06q": '\\"{}',
    "qa07q": "#comment; insert rule inet netfence forward accept",
    "qa08q": "\r\nflush table inet netfence",
    "qa10q": '" accept comment "x',
    "qa11q": ";drop",
    "qa12q": '}tier"\n#',
    "qa13q": ";{}",
    "qa14q": '"\ttab',
    "qa15q": "\n}\n",
    "qa16q": '"; counter accept comment "x',
    "qa17q": " #\n{ }",
    "qa18q": "'\"`$",
}

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: qa00q, labels: {team: qa02q}}
---
apiVersion: v1
kind: Namespace
metadata: {name: qa01q, labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {name: qa04q, namespace: qa00q, labels: {app: qa05q, qa03q: x}}
spec: {nodeName: node-a, containers: [{name: c, ports: [{name: qa11q, containerPort: 8080}]}]}
status: {podIP: 10.9.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: qa06q, namespace: qa00q, labels: {app: qa07q}}
spec: {nodeName: node-a, containers: [{name: c}]}
status: {podIP: 10.9.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: qa08q, namespace: qa01q, labels: {app: qa05q}}
spec: {nodeName: node-a, containers: [{name: c}]}
status: {podIP: 10.9.1.8}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: qa10q, namespace: qa00q}
spec:
  podSelector: {matchLabels: {app: qa05q}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: qa02q}}
      podSelector: {matchExpressions: [{key: app, operator: In, values: [qa07q]}]}
    ports: [{port: 80}, {port: qa11q}]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: qa01q}}}]
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: qa12q}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: qa12q.qa13q, namespace: qa00q}
spec:
  tier: qa12q
  selector: app == 'qa05q' || has(qa03q)
  types: [Ingress]
  ingress:
  - action: Deny
    protocol: TCP
    source: {selector: "app == 'qa07q'"}
    destination: {ports: [443]}
    metadata: {annotations: {note: "qa16q"}}
  - action: Pass
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: qa14q}
spec:
  selector: qa03q == 'x'
  types: [Egress]
  egress:
  - action: Allow
    protocol: UDP
    destination: {nets: [10.9.1.0/24], ports: [53]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: qa15q}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {team: qa02q}}}
  ingress:
  - {name: qa16q, action: Pass, from: [{namespaces: {}}]}
  egress:
  - name: qa17q
    action: Deny
    to: [{pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: qa01q}}, podSelector: {}}}]
    ports: [{portNumber: {port: 22}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {name: qa18q, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: qa07q}}}}]}
"""


def sanitize(text: str) -> str:
    return _COMMENT_UNSAFE.sub("_", text)


HOSTILE_NAMES = {k: k + v for k, v in HOSTILE.items()}
SANITIZED_NAMES = {k: sanitize(k + v) for k, v in HOSTILE.items()}


def renamed(value: Any, names: Mapping[str, str]) -> Any:
    """`value` (any model object) with every placeholder in every string replaced."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        out = value
        for old, new in names.items():
            out = out.replace(old, new)
        return value if out == value else out
    if isinstance(value, Labels):
        return Labels({renamed(k, names): renamed(v, names) for k, v in value.items()})
    if isinstance(value, tuple | list):
        return type(value)(renamed(v, names) for v in value)
    if isinstance(value, frozenset | set):
        return type(value)(renamed(v, names) for v in value)
    if isinstance(value, dict):
        return {renamed(k, names): renamed(v, names) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: renamed(getattr(value, f.name), names) for f in dataclasses.fields(value) if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


@pytest.fixture(scope="module")
def placeholder_inventory() -> Inventory:
    problems: list[Any] = []
    documents = parse_source(Source("cluster.yaml", CLUSTER), problems)
    assert problems == []
    loaded = build_inventory(documents)
    assert len(loaded.inventory.pods) == 3 and loaded.inventory.policy_count == 5
    return loaded.inventory


def table_for(inventory: Inventory) -> Table:
    # The same interface for the same pod (by position) in both clusters.
    interfaces = {pod.namespace + "/" + pod.name: f"nfv{i}" for i, pod in enumerate(inventory.pods)}
    return compile_node(build_ruleset(inventory), "node-a", interfaces)


def normalized(table: Table) -> Table:
    """Sets renamed s0, s1, ... in the order rules first use them (their names are digests of the
    rule they serve, which holds the names)."""
    order: dict[str, str] = {}
    for chain in table.chains:
        for rule in chain.rules:
            for name in re.findall(r"@(\w+)", rule.statement):
                if name in {s.name for s in table.sets}:
                    order.setdefault(name, f"s{len(order)}")

    def rule(r: Rule) -> Rule:
        return Rule(re.sub(r"@(\w+)", lambda m: "@" + order.get(m[1], m[1]), r.statement), r.note)

    sets = sorted((AddressSet(order[s.name], s.type, s.elements) for s in table.sets), key=lambda s: s.name)
    chains = tuple(Chain(c.name, tuple(rule(r) for r in c.rules), c.hook) for c in table.chains)
    return Table(tuple(sets), table.maps, chains, table.family, table.name)


@pytest.fixture(scope="module")
def tables(placeholder_inventory: Inventory) -> tuple[Table, Table]:
    hostile = table_for(renamed(placeholder_inventory, HOSTILE_NAMES))
    sanitized = table_for(renamed(placeholder_inventory, SANITIZED_NAMES))
    return hostile, sanitized


def test_hostile_names_really_are_in_the_model(placeholder_inventory: Inventory) -> None:
    hostile = renamed(placeholder_inventory, HOSTILE_NAMES)
    assert {ns.name for ns in hostile.namespaces} == {HOSTILE_NAMES["qa00q"], HOSTILE_NAMES["qa01q"]}
    assert {p.name for p in hostile.admin_policies} == {HOSTILE_NAMES["qa15q"], "default"}
    assert {t.name for t in hostile.tiers} == {HOSTILE_NAMES["qa12q"]}
    assert any(HOSTILE_NAMES["qa05q"] in pod.labels.values() for pod in hostile.pods)


def test_hostile_names_render_exactly_the_table_of_sanitized_names(tables: tuple[Table, Table]) -> None:
    hostile, sanitized = tables
    assert hostile.chains and hostile.sets and any(m.elements for m in hostile.maps)

    assert normalized(hostile).render() == normalized(sanitized).render()
    # Every rule, set and element is there: the sanitized table is not trivially empty either.
    assert sum(len(c.rules) for c in hostile.chains) >= 15


def test_every_comment_is_one_quoted_string_of_the_safe_alphabet(tables: tuple[Table, Table]) -> None:
    text = tables[0].render()
    comments = re.findall(r'comment "([^"\n]*)"', text)
    assert comments and all(re.fullmatch(r"[A-Za-z0-9 ._/:\[\]()=,-]{1,128}", c) for c in comments)
    assert any("qa16q" in c for c in comments) and any("qa12q" in c for c in comments)
    # One statement per line, every line of the grammar netfence writes.
    assert all(line.startswith(("table ", "\t", "}")) for line in text.splitlines())
    assert text.count('"') == 2 * len(comments) + 2 * sum(len(m.elements) for m in tables[0].maps)


def test_transition_scripts_of_hostile_and_sanitized_tables_match_line_for_line(tables: tuple[Table, Table]) -> None:
    hostile, sanitized = (normalized(t) for t in tables)
    assert transition_script(None, hostile) == transition_script(None, sanitized)
    assert transition_script(hostile.names(), hostile) == transition_script(sanitized.names(), sanitized)


def test_a_comment_never_leaves_its_quotes() -> None:
    for text in (*HOSTILE_NAMES.values(), '"', "\\", "x" * 500, "é€\u2028\x00"):
        rendered = comment(text)
        assert rendered.startswith('comment "') and rendered.endswith('"')
        assert '"' not in rendered[9:-1] and "\\" not in rendered and "\n" not in rendered
        assert len(rendered[9:-1].encode()) <= 128


def test_no_shell_anywhere_in_netfence() -> None:
    """No `shell=True`, os.system, os.popen, getoutput or create_subprocess_shell in src/: every
    subprocess gets an argument list."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name.split(".")[-1] in ("system", "popen", "getoutput", "getstatusoutput", "create_subprocess_shell"):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {name}")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant) and not keyword.value.value):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {name}(shell=...)")
    assert found == []


# --- in the kernel ------------------------------------------------------------------------------


@pytest.fixture
def two_netns() -> Iterator[tuple[str, str]]:
    names = tuple(f"netfence-test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield names  # type: ignore[misc]
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def kernel_view(netns: str) -> dict[str, Any]:
    """The table as the kernel holds it (nft -j): chains with their rules' expressions and comments,
    sets with their elements, maps; set names normalized in the order rules use them."""
    items = json.loads(run_nft(["-j", "list", "table", "inet", "netfence"], netns))["nftables"]
    rules = [i["rule"] for i in items if "rule" in i]
    order: dict[str, str] = {}

    def rename(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            return "@" + order.setdefault(value[1:], f"s{len(order)}")
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items() if k not in ("handle",)}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    chains: dict[str, list[Any]] = {}
    for rule in rules:
        chains.setdefault(rule["chain"], []).append((rename(rule["expr"]), rule.get("comment")))
    sets = {
        order.get(i["set"]["name"], i["set"]["name"]): i["set"].get("elem", [])
        for i in items
        if "set" in i
    }
    maps = {i["map"]["name"]: i["map"].get("elem", []) for i in items if "map" in i}
    return {"chains": chains, "sets": sets, "maps": maps}


@pytest.mark.lab
def test_the_kernel_holds_for_hostile_names_exactly_what_it_holds_for_sanitized_ones(
    tables: tuple[Table, Table], two_netns: tuple[str, str]
) -> None:
    hostile, sanitized = tables
    for table, netns in zip((hostile, sanitized), two_netns, strict=True):
        script = table.replace_script()
        run_nft(["--check", "-f", "-"], netns, script)  # what apply_script does first
        apply_script(script, netns)

    held = [kernel_view(netns) for netns in two_netns]
    assert held[0] == held[1]
    rendered = {c.name: [r.note for r in c.rules] for c in hostile.chains}
    assert {name: [comment for _, comment in rules] for name, rules in held[0]["chains"].items()} == {
        name: [sanitize(note)[:128] if note else None for note in notes] for name, notes in rendered.items() if notes
    }
