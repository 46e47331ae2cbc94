"""Fuzz inputs for the loader and the Calico selector parser, and the checks run on them (shared by
test_fuzz_inputs.py and bench/fuzz.py).

Loader inputs are random bytes, YAML-ish text built from YAML's own punctuation, and mutations of
valid generated clusters: structural ones (a value replaced by one of another type or a hostile
string, a key dropped or added, a list emptied) and textual ones (bytes cut, repeated, swapped or
inserted). Whatever comes in, load_inventory returns or raises InputErrors whose problems are one
line each; what loads also builds, compiles to nftables and evaluates without an error.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from cluster_strategies import ClusterSpec, clusters, pick, to_yaml
from hypothesis import strategies as st

from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.dataplane.nft.compile import compile_node
from netfence.errors import InputError, InputErrors
from netfence.ir.build import build_ruleset
from netfence.model.calico_selector import SelectorError, format_expr, parse_selector
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

_FRAGMENTS = (
    "apiVersion: v1\n", "kind: Pod\n", "kind: NetworkPolicy\n", "apiVersion: networking.k8s.io/v1\n",
    "apiVersion: projectcalico.org/v3\n", "kind: GlobalNetworkPolicy\n", "metadata:\n", "  name: a\n",
    "spec:\n", "  ingress:\n", "  - ", "from:", "ports: [", "]", "{", "}", ", ", ": ", "- ", "---\n", "...\n",
    "&a ", "*a", "<<: *a\n", "!!str ", "!!int ", "!!binary ", "!!python/object/apply:os.system ", "!local ",
    "? ", "|\n", ">-\n", "'", '"', "\\", "\n", "  ", "\t", "#", "%YAML 1.2\n", "%TAG ! tag:x,2000:\n",
    "80", "-1", "0x50", "1e400", "0o17", "null", "~", "true", "yes", "2001-12-14", ".inf", "10.0.0.0/8",
    "é", "\u2028", "\ufeff", "\x00", "\x1b", "😀", "a" * 70,
)  # fmt: skip
_HOSTILE_VALUES: tuple[Any, ...] = (
    None, True, 0, -1, 70000, 2**70, 1.5, float("nan"), "", " ", "a" * 300, "UPPER", "x\ny", '"; drop #',
    "10.0.0.0/33", "fe80::1%eth0", "::", "0.0.0.0/0", "app == ", "has(", "all()", "global()", "*", "-", ".",
    [], {}, [None], {"": ""}, {"a": {"b": {"c": []}}}, ["TCP"], "Ingress", "Egress", "In", "Exists", "Allow",
    "Deny", "Pass", "Log", "ICMP", "TCP", "web", "http", "dns", "9" * 30,
)  # fmt: skip
_HOSTILE = st.sampled_from(_HOSTILE_VALUES)  # (pick() caches on its options, and lists do not hash)
_KEYS = ("podSelector", "ingress", "egress", "from", "to", "ports", "port", "endPort", "protocol", "ipBlock",
         "cidr", "except", "selector", "action", "source", "destination", "nets", "priority", "subject",
         "namespaces", "pods", "tier", "order", "types", "name", "labels", "matchLabels", "matchExpressions",
         "values", "key", "operator", "bogus", "icmp", "ipVersion", "namedPort", "portNumber", "networks")  # fmt: skip

#: Flows evaluated on whatever loads.
_PORTS = (FlowPort(Protocol.TCP, 80), FlowPort(Protocol.UDP, 53), FlowPort(Protocol.ICMP, None))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a document (mappings and lists)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


@st.composite
def structural_mutation(draw: st.DrawFn, cluster: ClusterSpec) -> str:
    objects = copy.deepcopy(list(cluster.objects))
    for _ in range(draw(pick((1, 1, 2, 3)))):
        target = draw(pick(tuple(range(len(objects)))))
        paths = [p for p in _paths(objects[target]) if p]
        if not paths:
            continue
        path = draw(pick(tuple(paths)))
        parent = _parent(objects[target], path)
        action = draw(pick(("replace", "replace", "drop", "add", "empty", "wrap")))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(_HOSTILE))
        elif action == "drop":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(pick(_KEYS))] = copy.deepcopy(draw(_HOSTILE))
        elif action == "empty":
            parent[path[-1]] = [] if draw(st.booleans()) else {}
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
    return to_yaml(objects)


@st.composite
def textual_mutation(draw: st.DrawFn, cluster: ClusterSpec) -> bytes:
    data = bytearray(to_yaml(cluster.objects).encode())
    for _ in range(draw(pick((1, 2, 4)))):
        if not data:
            break
        start = draw(st.integers(0, len(data) - 1))
        end = min(len(data), start + draw(st.integers(0, 40)))
        action = draw(pick(("cut", "repeat", "insert", "flip")))
        if action == "cut":
            del data[start:end]
        elif action == "repeat":
            data[start:start] = data[start:end] * draw(pick((2, 3)))
        elif action == "insert":
            data[start:start] = draw(pick(_FRAGMENTS)).encode()
        else:
            data[start] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def loader_inputs(draw: st.DrawFn) -> bytes:
    shape = draw(pick(("bytes", "fragments", "structural", "structural", "textual")))
    if shape == "bytes":
        return bytes(draw(st.binary(max_size=400)))
    if shape == "fragments":
        return "".join(draw(st.lists(pick(_FRAGMENTS), max_size=60))).encode()
    cluster = draw(clusters(max_policies=3))
    if shape == "structural":
        return str(draw(structural_mutation(cluster))).encode()
    return bytes(draw(textual_mutation(cluster)))


_DIRECTORY = Path(tempfile.mkdtemp(prefix="netfence-fuzz-"))


def check_loader(data: bytes) -> None:
    """Only InputErrors may come out of load_inventory, each problem one line; what loads must
    build, compile and evaluate."""
    path = _DIRECTORY / "input.yaml"
    path.write_bytes(data)
    try:
        loaded = load_inventory([str(path)])
    except InputErrors as exc:
        assert exc.problems, "InputErrors without a problem"
        for problem in exc.problems:
            assert isinstance(problem, InputError)
            text = str(problem)
            assert text and "\n" not in text and "\r" not in text, repr(text)
            assert text.startswith(str(path)), text
        return
    ruleset = build_ruleset(loaded.inventory)
    compile_node(ruleset, None).render()
    endpoints = ruleset.endpoints[:3]
    for source in endpoints:
        for destination in endpoints:
            for port in _PORTS:
                evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))


_SELECTOR_FRAGMENTS = (
    "app", "tier", "a.b/c-d_e", " == ", " != ", "'web'", '"db"', "''", "has(", "!has(", ")", "(", "!", " && ",
    " || ", " in ", " not in ", " not  in", "{", "}", ", ", "all()", "global()", " starts with ", " ends with ",
    " contains ", " ", "\t", "\n", "'", '"', "=", "&", "|", "é", "\x00", "in", "has", "all", "global", "x" * 600,
)  # fmt: skip


@st.composite
def selector_texts(draw: st.DrawFn) -> str:
    if draw(pick((0, 1, 2, 3))) == 0:
        return str(draw(st.text(max_size=60)))
    text = "".join(draw(st.lists(pick(_SELECTOR_FRAGMENTS), max_size=40)))
    if draw(pick((0, 1, 2, 3, 4, 5))) == 0:
        depth = draw(pick((50, 99, 100, 101, 150, 3000)))
        opener = draw(pick(("!", "(", "!(", "(a == 'b' && ")))
        text = opener * depth + "a == 'b'" + ")" * (depth * opener.count("(")) + text
    return text


def check_selector(text: str) -> None:
    """Only SelectorError may come out of parse_selector, pointing into the text; what parses
    prints back to an equal tree and evaluates."""
    try:
        selector = parse_selector(text)
    except SelectorError as exc:
        assert 0 <= exc.position <= len(text), (exc.position, len(text))
        assert exc.message and "\n" not in exc.message
        return
    hash(selector)
    selector.uses_global()
    selector.matches({"app": "web", "tier": "db"})
    if selector.expr is not None:
        try:
            printed = format_expr(selector.expr)
        except ValueError:
            return  # a value holding both kinds of quote cannot be printed (documented)
        assert parse_selector(printed).expr == selector.expr, printed
