"""Hypothesis strategies for random, valid clusters written as Kubernetes objects (plain dicts).

The objects go through the real loader (YAML text -> documents -> pydantic -> model), so what a
property checks is what a user gets. Vocabularies are tiny on purpose: with three label keys of
two or three values each, selectors actually select something, and IPs and CIDRs are drawn from
a few subnets so that ipBlock peers and their `except`s cover some pods and not others.

Also here: `spec_allows`, a direct reading of the NetworkPolicy spec over the same dicts,
independent of netfence's model and IR, which the properties use as an oracle.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

import yaml
from hypothesis import strategies as st

from netfence.errors import InputError
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.documents import Document, Source, parse_source
from netfence.sources.load import build_inventory

Obj = dict[str, Any]

# --- vocabularies ----------------------------------------------------------------------------

NAMESPACE_NAMES = ("alpha", "beta", "gamma")
#: Written without metadata.namespace (so the loader defaults it) and never declared.
DEFAULT_NAMESPACE = "default"
NAME_LABEL = "kubernetes.io/metadata.name"

POD_LABELS: dict[str, tuple[str, ...]] = {
    "app": ("web", "db", "dns"),
    "tier": ("front", "back"),
    "env": ("prod", "dev"),
}
NAMESPACE_LABELS: dict[str, tuple[str, ...]] = {
    "team": ("red", "blue"),
    "env": ("prod", "dev"),
}
#: Keys a namespaceSelector may use; the name label is set on every namespace by the loader.
NAMESPACE_SELECTOR_LABELS: dict[str, tuple[str, ...]] = {
    **NAMESPACE_LABELS,
    NAME_LABEL: (*NAMESPACE_NAMES, DEFAULT_NAMESPACE),
}

#: Flows checked by the properties. 80/SCTP and 53/TCP catch protocol mix-ups; ICMP has no port.
FLOW_PORTS: tuple[FlowPort, ...] = (
    FlowPort(Protocol.TCP, 80),
    FlowPort(Protocol.TCP, 8080),
    FlowPort(Protocol.UDP, 53),
    FlowPort(Protocol.TCP, 53),
    FlowPort(Protocol.TCP, 443),
    FlowPort(Protocol.SCTP, 80),
    FlowPort(Protocol.ICMP, None),
)

PORT_NAMES = ("http", "dns", "tls", "nope")
PORT_NUMBERS = (53, 80, 443, 8080, 8443)

#: Pod addresses: 10.0.{0,1}.{1..31}, so /24 and /28 CIDRs split the pods.
POD_ADDRESSES = tuple(f"10.0.{third}.{fourth}" for third in (0, 1) for fourth in range(1, 32))
#: hostNetwork pods carry their node's address.
NODE_ADDRESSES = ("10.0.255.1", "10.0.255.2", "192.168.7.1")
#: Addresses outside the inventory.
OUTSIDE_ADDRESSES = ("10.0.0.200", "8.8.8.8")

#: Base addresses CIDRs are drawn around.
_CIDR_BASES = (*POD_ADDRESSES[:8], "10.0.1.1", "10.0.1.17", "10.0.255.1", "192.168.7.1", "0.0.0.0")
_CIDR_PREFIXES = (0, 8, 16, 23, 24, 26, 28, 30, 31, 32)


# --- objects ---------------------------------------------------------------------------------


def namespace_obj(name: str, labels: Mapping[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}


def meta(name: str, namespace: str, labels: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace != DEFAULT_NAMESPACE:
        out["namespace"] = namespace
    if labels is not None:
        out["labels"] = dict(labels)
    return out


def namespace_of(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or DEFAULT_NAMESPACE)


@functools.cache
def pick(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """`sampled_from`, built once per tuple of options: building strategies is most of the cost
    of drawing from them otherwise."""
    return st.sampled_from(options)


BOOLEANS = st.booleans()


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws (shrinks to False)."""
    return bool(draw(pick(tuple(range(one_in)))) == one_in - 1)


def label_maps(vocabulary: Mapping[str, Sequence[str]]) -> st.SearchStrategy[dict[str, str]]:
    """Label maps over `vocabulary`: each key present or not, with one of its values."""
    return st.fixed_dictionaries({}, optional={k: pick(tuple(v)) for k, v in vocabulary.items()})


POD_LABEL_MAPS = label_maps(POD_LABELS)
#: A Namespace may be written with a name label of its own, even a wrong one: the API server
#: (and the loader) set it to the namespace's name anyway.
NAMESPACE_LABEL_MAPS = label_maps({**NAMESPACE_LABELS, NAME_LABEL: NAMESPACE_NAMES})


@st.composite
def container_ports(draw: st.DrawFn) -> list[Obj]:
    """containerPorts with distinct names (the API server rejects duplicate names in a pod)."""
    ports: list[Obj] = []
    if draw(BOOLEANS):
        # The same name means 80 on some pods and 8080 on others.
        ports.append({"name": "http", "containerPort": draw(pick((80, 8080))), "protocol": "TCP"})
    if draw(BOOLEANS):
        ports.append({"name": "dns", "containerPort": 53, "protocol": "UDP"})
    if chance(draw, 3):
        entry: Obj = {"name": "tls", "containerPort": draw(pick((443, 8443)))}
        if draw(BOOLEANS):
            entry["protocol"] = "TCP"  # else left to its default
        ports.append(entry)
    if chance(draw, 4):
        ports.append({"containerPort": 443, "protocol": "TCP"})
    if chance(draw, 4):
        # A name policies also use with TCP: only a port entry with protocol SCTP resolves it.
        ports.append({"name": "nope", "containerPort": 80, "protocol": "SCTP"})
    return ports


CONTAINER_PORTS = container_ports()
_POD_KINDS = ("plain",) * 8 + ("host", "dual", "pending", "done")


@st.composite
def pods(draw: st.DrawFn, namespaces: Sequence[str], count: int) -> list[Obj]:
    ips = draw(st.lists(pick(POD_ADDRESSES), min_size=count, max_size=count, unique=True))
    node_ips = iter(NODE_ADDRESSES)
    out: list[Obj] = []
    names: dict[str, int] = {}
    for i in range(count):
        namespace = draw(pick(tuple(namespaces)))
        # Names repeat across namespaces (alpha/pod-0, beta/pod-0): identity is namespace/name.
        name = f"pod-{names.setdefault(namespace, 0)}"
        names[namespace] += 1
        labels = draw(POD_LABEL_MAPS)
        ports = draw(CONTAINER_PORTS)
        containers = [{"name": "main", "image": "busybox", "ports": ports}]
        if len(ports) > 1 and draw(BOOLEANS):
            # Named ports of every container count.
            containers = [{**containers[0], "ports": ports[:1]}, {"name": "side", "image": "envoy", "ports": ports[1:]}]
        spec: Obj = {"containers": containers}
        status: Obj = {"phase": "Running"}
        kind = draw(pick(_POD_KINDS))
        if kind == "host" and (node_ip := next(node_ips, None)) is not None:
            spec["hostNetwork"] = True
            spec["nodeName"] = f"node-{node_ip}"
            status["podIP"] = node_ip
        elif kind == "dual":
            status["podIPs"] = [{"ip": ips[i]}, {"ip": f"fd00::{i + 1:x}"}]
            if draw(BOOLEANS):
                status["podIP"] = ips[i]  # as the API prints it: the first of podIPs
        elif kind == "pending":
            status["phase"] = "Pending"  # no address yet
        elif kind == "done":
            status["phase"] = "Succeeded"  # ignored by the loader
            status["podIP"] = ips[i]
        else:
            status["podIP"] = ips[i]
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta(name, namespace, labels),
                "spec": spec,
                "status": status,
            }
        )
    return out


@st.composite
def selectors(draw: st.DrawFn, vocabulary: Mapping[str, Sequence[str]]) -> Obj:
    """A LabelSelector dict: often `{}`, else matchLabels and/or matchExpressions (every operator)."""
    if chance(draw, 4):
        return {}
    keys = tuple(vocabulary)
    out: Obj = {}
    match_labels: dict[str, str] = {}
    for key in draw(st.lists(pick(keys), max_size=2, unique=True)):
        # A value outside the vocabulary now and then: a selector that matches nothing.
        match_labels[key] = draw(pick((*vocabulary[key], "zzz")))
    if match_labels:
        out["matchLabels"] = match_labels
    expressions = []
    for _ in range(draw(pick((0, 1, 2)))):
        key = draw(pick(keys))
        operator = draw(pick(("In", "NotIn", "Exists", "DoesNotExist")))
        expression: Obj = {"key": key, "operator": operator}
        if operator in ("In", "NotIn"):
            expression["values"] = draw(st.lists(pick(tuple(vocabulary[key])), min_size=1, max_size=2, unique=True))
        elif draw(BOOLEANS):
            expression["values"] = []  # allowed for Exists/DoesNotExist: same as absent
        expressions.append(expression)
    if expressions:
        out["matchExpressions"] = expressions
    return out


POD_SELECTORS = selectors(POD_LABELS)
NAMESPACE_SELECTORS = selectors(NAMESPACE_SELECTOR_LABELS)


@st.composite
def ip_blocks(draw: st.DrawFn) -> Obj:
    """An ipBlock: a CIDR around the pod subnets (rarely IPv6), sometimes with excepts inside it."""
    if chance(draw, 16):
        return {"cidr": draw(pick(("fd00::/64", "fd00::/120", "::/0")))}
    base = draw(pick(_CIDR_BASES))
    prefix = draw(pick(_CIDR_PREFIXES))
    network = ip_network(f"{base}/{prefix}", strict=False)
    assert isinstance(network, IPv4Network)
    # The API server accepts host bits set in the cidr (`10.0.0.5/24`); keep that sometimes.
    out: Obj = {"cidr": str(network) if draw(BOOLEANS) else f"{base}/{prefix}"}
    if prefix < 32 and draw(BOOLEANS):
        excepts: list[str] = []
        inside = tuple(a for a in POD_ADDRESSES if IPv4Address(a) in network)
        for _ in range(draw(pick((1, 2)))):
            longer = draw(st.integers(max(prefix + 1, 16), 32))
            # An address inside the CIDR, mostly one of the pods'.
            among_pods: bool = draw(BOOLEANS)
            if inside and among_pods:
                address = IPv4Address(draw(pick(inside)))
            else:
                address = network.network_address + draw(st.integers(0, min(network.num_addresses, 1 << 16) - 1))
            excepts.append(str(ip_network(f"{address}/{longer}", strict=False)))
        out["except"] = excepts
    return out


@st.composite
def peers(draw: st.DrawFn) -> Obj:
    shape = draw(pick(("pod", "namespace", "both", "ip")))
    if shape == "ip":
        return {"ipBlock": draw(IP_BLOCKS)}
    out: Obj = {}
    if shape in ("pod", "both"):
        out["podSelector"] = draw(POD_SELECTORS)
    if shape in ("namespace", "both"):
        out["namespaceSelector"] = draw(NAMESPACE_SELECTORS)
    return out


_NATURAL_PROTOCOL = {"http": "TCP", "dns": "UDP", "tls": "TCP", "nope": "SCTP"}
_RANGE_STARTS = (1, 50, 53, 79, 80, 443, 1024, 8080)
_RANGE_ENDS = (53, 80, 443, 8000, 8080, 65535)


@st.composite
def policy_ports(draw: st.DrawFn) -> Obj:
    out: Obj = {}
    protocol = draw(pick((None, "TCP", "UDP", "SCTP")))
    if protocol is not None:
        out["protocol"] = protocol
    shape = draw(pick(("absent", "number", "name", "name", "range")))
    if shape == "number":
        out["port"] = draw(pick(PORT_NUMBERS))
    elif shape == "name":
        name = out["port"] = draw(pick(PORT_NAMES))
        if not chance(draw, 4):
            # Mostly with the protocol pods declare the name with, so that it resolves.
            out["protocol"] = _NATURAL_PROTOCOL[name]
    elif shape == "range":
        start = out["port"] = draw(pick(_RANGE_STARTS))
        out["endPort"] = draw(pick(tuple(e for e in _RANGE_ENDS if e >= start)))
    return out


IP_BLOCKS = ip_blocks()
PEERS = peers()
POLICY_PORTS = policy_ports()


def _optional_list(draw: st.DrawFn, items: st.SearchStrategy[Obj], max_size: int) -> list[Obj] | None:
    """None (field absent), [] (empty) or a non-empty list."""
    shape = draw(pick(("absent", "empty", "list", "list")))
    if shape == "absent":
        return None
    if shape == "empty":
        return []
    return draw(st.lists(items, min_size=1, max_size=max_size))


@st.composite
def rules(draw: st.DrawFn, peers_field: str) -> Obj:
    """An ingress (`from`) or egress (`to`) rule; peers and ports each absent, empty or given."""
    rule: Obj = {}
    found_peers = _optional_list(draw, PEERS, 3)
    if found_peers is not None:
        rule[peers_field] = found_peers
    found_ports = _optional_list(draw, POLICY_PORTS, 3)
    if found_ports is not None:
        rule["ports"] = found_ports
    return rule


RULES = {"from": rules("from"), "to": rules("to")}
_POLICY_TYPES = (None, (), ("Ingress",), ("Egress",), ("Ingress", "Egress"), ("Egress", "Ingress"))


@st.composite
def policies(draw: st.DrawFn, namespaces: Sequence[str], count: int) -> list[Obj]:
    out = []
    names: dict[str, int] = {}
    for _ in range(count):
        namespace = draw(pick(tuple(namespaces)))
        name = f"np-{names.setdefault(namespace, 0)}"
        names[namespace] += 1
        spec: Obj = {"podSelector": draw(POD_SELECTORS)}
        types = draw(pick(_POLICY_TYPES))
        if types is not None:
            spec["policyTypes"] = list(types)
        for field, peers_field in (("ingress", "from"), ("egress", "to")):
            found = _optional_list(draw, RULES[peers_field], 3)
            if found is not None:
                spec[field] = found
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta(name, namespace),
                "spec": spec,
            }
        )
    return out


@dataclass(frozen=True)
class ClusterSpec:
    """A generated cluster: every object as the API would print it."""

    namespaces: tuple[Obj, ...]
    pods: tuple[Obj, ...]
    policies: tuple[Obj, ...]

    @property
    def objects(self) -> list[Obj]:
        return [*self.namespaces, *self.pods, *self.policies]

    @property
    def namespace_names(self) -> list[str]:
        """Every namespace objects live in: the declared ones, then `default` if used."""
        names = [ns["metadata"]["name"] for ns in self.namespaces]
        for obj in (*self.pods, *self.policies):
            if namespace_of(obj) not in names:
                names.append(namespace_of(obj))
        return names

    def with_policies(self, policies: Iterable[Obj]) -> ClusterSpec:
        return ClusterSpec(self.namespaces, self.pods, tuple(policies))

    def __str__(self) -> str:
        return to_yaml(self.objects)


_POD_COUNTS = (1, 2, 3, 3, 4, 4, 5, 5, 6, 6)


@st.composite
def clusters(draw: st.DrawFn, max_policies: int = 4) -> ClusterSpec:
    names = draw(st.lists(pick(NAMESPACE_NAMES), min_size=1, max_size=3, unique=True))
    declared = [namespace_obj(n, draw(NAMESPACE_LABEL_MAPS)) for n in names]
    # Sometimes objects also live in `default`, which is never declared (implicit namespace).
    used = names + ([DEFAULT_NAMESPACE] if chance(draw, 5) else [])
    # Counts drawn from lists rather than ranges: hypothesis favours small integers, and most
    # properties need a few pods and policies to say anything.
    pod_objs = draw(pods(used, draw(pick(_POD_COUNTS))))
    policy_objs = draw(policies(used, draw(pick((0, *range(1, max_policies + 1), max_policies)))))
    return ClusterSpec(tuple(declared), tuple(pod_objs), tuple(policy_objs))


# --- loading ---------------------------------------------------------------------------------


#: libyaml's emitter when PyYAML has it: dumping is most of an example's run time otherwise.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(objects: Iterable[Obj]) -> str:
    return "".join("---\n" + yaml.dump(o, Dumper=_Dumper, sort_keys=False) for o in objects)


def parse_text(text: str, name: str = "cluster.yaml") -> list[Document]:
    """YAML text -> documents, as the loader reads a file; generated input has no problems."""
    problems: list[InputError] = []
    found = parse_source(Source(name, text), problems)
    assert not problems, [str(p) for p in problems]
    return found


def documents(objects: Iterable[Obj], name: str = "cluster.yaml") -> list[Document]:
    """Objects -> YAML text -> documents."""
    return parse_text(to_yaml(objects), name)


@dataclass(frozen=True)
class Loaded:
    inventory: Inventory
    ruleset: Ruleset


def load(objects: Iterable[Obj]) -> Loaded:
    loaded = build_inventory(documents(objects))
    assert not loaded.warnings, loaded.warnings
    return Loaded(loaded.inventory, build_ruleset(loaded.inventory))


# --- the NetworkPolicy spec, read directly from the dicts ------------------------------------


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics, stated plainly: every matchLabels pair is present, and
    every expression holds; NotIn and DoesNotExist hold for objects without the key."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class SpecParty:
    """One side of a flow for the oracle: a pod object, or just an address."""

    pod: Obj | None
    addresses: tuple[str, ...]


def pod_addresses(pod: Obj) -> tuple[str, ...]:
    status = pod.get("status") or {}
    if status.get("podIPs"):
        return tuple(p["ip"] for p in status["podIPs"])
    return (status["podIP"],) if status.get("podIP") else ()


def is_endpoint(pod: Obj) -> bool:
    """Policy applies to the pod: not hostNetwork, not finished."""
    return not pod["spec"].get("hostNetwork") and pod["status"].get("phase") not in ("Succeeded", "Failed")


def spec_allows(cluster: ClusterSpec, source: SpecParty, destination: SpecParty, port: FlowPort) -> bool:
    """Whether NetworkPolicy allows `source` -> `destination` on `port`, from the spec alone."""
    if source.pod is not None and destination.pod is not None and source.pod is destination.pod:
        return True
    return _side(cluster, "egress", source, destination, port) and _side(
        cluster, "ingress", destination, source, port
    )


def _namespace_labels(cluster: ClusterSpec, name: str) -> dict[str, str]:
    for ns in cluster.namespaces:
        if ns["metadata"]["name"] == name:
            return {**(ns["metadata"].get("labels") or {}), NAME_LABEL: name}
    return {NAME_LABEL: name}


def policy_types(policy: Obj) -> set[str]:
    """policyTypes after the API server's defaulting."""
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _side(cluster: ClusterSpec, direction: str, local: SpecParty, remote: SpecParty, port: FlowPort) -> bool:
    if local.pod is None or not is_endpoint(local.pod):
        return True
    kind = "Ingress" if direction == "ingress" else "Egress"
    namespace = namespace_of(local.pod)
    selecting = [
        p
        for p in cluster.policies
        if kind in policy_types(p)
        and namespace_of(p) == namespace
        and selector_matches(p["spec"].get("podSelector") or {}, local.pod["metadata"].get("labels") or {})
    ]
    if not selecting:
        return True
    destination = local if direction == "ingress" else remote
    peers_field = "from" if direction == "ingress" else "to"
    return any(
        _peers_match(cluster, namespace_of(policy), rule.get(peers_field), remote)
        and _ports_match(rule.get("ports"), port, destination)
        for policy in selecting
        for rule in policy["spec"].get(direction) or ()
    )


def _peers_match(cluster: ClusterSpec, policy_namespace: str, peers: list[Obj] | None, remote: SpecParty) -> bool:
    if not peers:
        return True
    for peer in peers:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            network = ip_network(block["cidr"], strict=False)
            excepts = [ip_network(e, strict=False) for e in block.get("except") or ()]
            for text in remote.addresses:
                address = ip_address(text)
                if address.version == network.version and address in network:
                    if not any(address in e for e in excepts):
                        return True
            continue
        # Selectors select pods policy applies to, never a hostNetwork pod or a bare address.
        if remote.pod is None or not is_endpoint(remote.pod):
            continue
        remote_namespace = namespace_of(remote.pod)
        if "namespaceSelector" in peer:
            namespace_ok = selector_matches(peer["namespaceSelector"], _namespace_labels(cluster, remote_namespace))
        else:
            namespace_ok = remote_namespace == policy_namespace
        pod_ok = "podSelector" not in peer or selector_matches(
            peer["podSelector"], remote.pod["metadata"].get("labels") or {}
        )
        if namespace_ok and pod_ok:
            return True
    return False


def _ports_match(ports: list[Obj] | None, port: FlowPort, destination: SpecParty) -> bool:
    if not ports:
        return True
    if port.port is None:  # ICMP: only a rule without ports allows it
        return False
    for entry in ports:
        if entry.get("protocol", "TCP") != port.protocol.value:
            continue
        number = entry.get("port")
        if number is None:
            return True
        if isinstance(number, int):
            if number <= port.port <= entry.get("endPort", number):
                return True
            continue
        if destination.pod is None or not is_endpoint(destination.pod):
            # Names resolve against the destination pod's containerPorts; a hostNetwork pod is
            # only its node's address here (README, Semantics), so it has no names.
            continue
        for container in destination.pod["spec"]["containers"]:
            for declared in container.get("ports") or ():
                if (
                    declared.get("name") == number
                    and declared.get("protocol", "TCP") == port.protocol.value
                    and declared["containerPort"] == port.port
                ):
                    return True
    return False
