"""Hypothesis strategies for random clusters with policies of every kind netfence loads, written as
Kubernetes objects (plain dicts) and loaded through the real loader (YAML text -> documents ->
pydantic -> model), so the loader is exercised by every example.

A cluster: namespaces with labels, service accounts with labels, nodes with addresses, pods with
labels, named ports, addresses and service accounts, a Service; policies: Kubernetes
NetworkPolicy, Calico NetworkPolicy and GlobalNetworkPolicy (tiers with both default actions,
orders, Allow/Deny/Pass/Log, protocol and notProtocol, ICMP and notICMP, ipVersion, nets and
notNets, selector, notSelector, namespaceSelector, ports and notPorts by number, range and name (on
both sides: source ports cover, miss or split the ephemeral range),
serviceAccounts, services), NetworkSet and GlobalNetworkSet, AdminNetworkPolicy,
BaselineAdminNetworkPolicy and ClusterNetworkPolicy.

Vocabularies are tiny on purpose, so selectors select something and CIDRs cut through the pods.
`Layout` fixes the pods (namespace, name, node, address) so that one kernel lab can be reused by
many examples: only labels, ports, accounts and policies vary then.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_network
from typing import Any

import yaml
from hypothesis import strategies as st

from netfence.model.ports import FlowPort, Protocol

Obj = dict[str, Any]

NAMESPACES = ("alpha", "beta", "gamma")
NODES = ("node-a", "node-b")
ACCOUNTS = ("default", "robot")
POD_LABELS: dict[str, tuple[str, ...]] = {"app": ("web", "db", "dns"), "tier": ("front", "back")}
NAMESPACE_LABELS: dict[str, tuple[str, ...]] = {"team": ("red", "blue"), "env": ("prod", "dev")}
ACCOUNT_LABELS: dict[str, tuple[str, ...]] = {"role": ("api", "batch")}
SET_LABELS: dict[str, tuple[str, ...]] = {"set": ("a", "b")}
NAME_LABEL = "kubernetes.io/metadata.name"

#: Pod addresses: two /24s, so /24, /26 and /28 CIDRs split the pods.
POD_ADDRESSES = tuple(f"10.0.{third}.{fourth}" for third in (0, 1) for fourth in range(1, 40))
NODE_ADDRESSES = {"node-a": "192.168.5.1", "node-b": "192.168.5.2"}
_CIDR_BASES = ("10.0.0.1", "10.0.0.17", "10.0.1.1", "10.0.1.33", "10.0.0.0", "192.168.5.1", "0.0.0.0")
_CIDR_PREFIXES = (0, 8, 16, 23, 24, 26, 28, 30, 32)

TCP80, TCP8080, TCP443, TCP53 = (FlowPort(Protocol.TCP, n) for n in (80, 8080, 443, 53))
UDP53, UDP80 = FlowPort(Protocol.UDP, 53), FlowPort(Protocol.UDP, 80)
SCTP80, ICMP = FlowPort(Protocol.SCTP, 80), FlowPort(Protocol.ICMP, None)
#: Flows the analyzer-only properties check.
FLOW_PORTS: tuple[FlowPort, ...] = (TCP80, TCP8080, TCP443, TCP53, UDP53, UDP80, SCTP80, ICMP)
#: What the lab probes (its servers speak TCP and UDP; the kernel answers pings).
LAB_PORTS: tuple[FlowPort, ...] = (TCP80, TCP8080, UDP53, ICMP)
#: Container ports pods may declare (named), all served in the lab.
NAMED_PORTS = (("http", 80, "TCP"), ("http", 8080, "TCP"), ("dns", 53, "UDP"), ("alt", 8080, "TCP"), ("dns", 53, "TCP"))
PORT_NAMES = ("http", "dns", "alt", "nope")


@functools.cache
def pick(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


BOOLEANS = st.booleans()


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws (shrinks to False)."""
    return bool(draw(pick(tuple(range(one_in)))) == one_in - 1)


def some(draw: st.DrawFn, options: Sequence[Any], most: int) -> list[Any]:
    return list(draw(st.lists(pick(tuple(options)), max_size=most, unique=True)))


def label_map(draw: st.DrawFn, vocabulary: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each key of the vocabulary, mostly present, with one of its values."""
    return {k: draw(pick(tuple(v))) for k, v in vocabulary.items() if not chance(draw, 4)}


def meta(name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    return out


# --- the cluster ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodSlot:
    namespace: str
    name: str
    node: str
    address: str
    #: An IPv6 address too (analysis only: the lab is IPv4).
    dual: bool = False
    host_network: bool = False


@dataclass(frozen=True)
class Layout:
    """Where the pods are: what a lab is built from."""

    namespaces: tuple[str, ...]
    pods: tuple[PodSlot, ...]


#: The kernel property's fixed layout: three namespaces, six pods on two nodes.
LAB_LAYOUT = Layout(
    NAMESPACES,
    (
        PodSlot("alpha", "a0", "node-a", "10.0.0.2"),
        PodSlot("alpha", "a1", "node-b", "10.0.0.18"),
        PodSlot("beta", "b0", "node-a", "10.0.1.2"),
        PodSlot("beta", "b1", "node-b", "10.0.1.34"),
        PodSlot("gamma", "g0", "node-a", "10.0.0.35"),
        PodSlot("gamma", "g1", "node-b", "10.0.1.20"),
    ),
)


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    namespaces = tuple(draw(st.lists(pick(NAMESPACES), min_size=1, max_size=3, unique=True)))
    count = draw(pick((1, 2, 3, 3, 4, 4, 5, 5, 6)))
    addresses = draw(st.lists(pick(POD_ADDRESSES), min_size=count, max_size=count, unique=True))
    pods, counters = [], dict.fromkeys(namespaces, 0)
    for address in addresses:
        namespace = draw(pick(namespaces))
        pods.append(
            PodSlot(
                namespace,
                f"p{counters[namespace]}",
                draw(pick(NODES)),
                address,
                dual=chance(draw, 6),
                host_network=chance(draw, 12),
            )
        )
        counters[namespace] += 1
    return Layout(namespaces, tuple(pods))


@dataclass(frozen=True)
class ClusterSpec:
    layout: Layout
    objects: tuple[Obj, ...]

    def __str__(self) -> str:
        return to_yaml(self.objects)


def pod_obj(draw: st.DrawFn, slot: PodSlot) -> Obj:
    ports, names = [], set()
    for name, number, protocol in some(draw, NAMED_PORTS, 3):
        if name not in names:
            names.add(name)
            ports.append({"name": name, "containerPort": number, "protocol": protocol})
    status: Obj = {"phase": "Running", "podIP": slot.address}
    if slot.dual:
        status["podIPs"] = [{"ip": slot.address}, {"ip": "fd00::" + slot.address.rsplit(".", 1)[1]}]
    spec: Obj = {"nodeName": slot.node, "containers": [{"name": "c", "image": "busybox", "ports": ports}]}
    account = draw(pick(ACCOUNTS))
    if account != "default" or draw(BOOLEANS):
        spec["serviceAccountName"] = account
    if slot.host_network:
        spec["hostNetwork"] = True
        status = {"phase": "Running", "podIP": NODE_ADDRESSES[slot.node]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(slot.name, slot.namespace, label_map(draw, POD_LABELS)),
        "spec": spec,
        "status": status,
    }


@st.composite
def clusters(draw: st.DrawFn, layout: Layout | None = None, *, kernel: bool = False, max_policies: int = 5) -> ClusterSpec:
    """A cluster over `layout` (drawn when None). `kernel`: only what a kernel can be compared on
    (Calico source ports that cover or miss the ephemeral range, never split it: the kernel's
    verdict would depend on the client's pick)."""
    if layout is None:
        layout = draw(layouts())
    objects: list[Obj] = []
    for namespace in layout.namespaces:
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(namespace, None, label_map(draw, NAMESPACE_LABELS))})
        for account in ACCOUNTS:
            if draw(BOOLEANS):
                labels = label_map(draw, ACCOUNT_LABELS)
                objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(account, namespace, labels)})
    for node in NODES:
        if draw(BOOLEANS):
            addresses = [{"type": "InternalIP", "address": NODE_ADDRESSES[node]}]
            objects.append(
                {"apiVersion": "v1", "kind": "Node", "metadata": meta(node, None, {"zone": draw(pick(("x", "y")))}), "status": {"addresses": addresses}}
            )
    objects += [pod_obj(draw, slot) for slot in layout.pods]
    if chance(draw, 3):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta("web-svc", layout.namespaces[0]),
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 8000, "targetPort": "http"}]},
            }
        )
    objects += draw(policies(layout, kernel=kernel, most=max_policies))
    return ClusterSpec(layout, tuple(objects))


# --- Kubernetes label selectors (NetworkPolicy, AdminNetworkPolicy) ------------------------------


@st.composite
def label_selectors(draw: st.DrawFn, vocabulary: Mapping[str, Sequence[str]]) -> Obj:
    if chance(draw, 3):
        return {}
    keys = tuple(vocabulary)
    out: Obj = {}
    # A value outside the vocabulary now and then: a selector that selects nothing.
    matched = {k: "zzz" if chance(draw, 8) else draw(pick(tuple(vocabulary[k]))) for k in some(draw, keys, 2)}
    if matched:
        out["matchLabels"] = matched
    expressions = []
    for _ in range(draw(pick((0, 0, 1, 2)))):
        key = draw(pick(keys))
        operator = draw(pick(("In", "NotIn", "Exists", "DoesNotExist")))
        expression: Obj = {"key": key, "operator": operator}
        if operator in ("In", "NotIn"):
            expression["values"] = draw(st.lists(pick(tuple(vocabulary[key])), min_size=1, max_size=2, unique=True))
        expressions.append(expression)
    if expressions:
        out["matchExpressions"] = expressions
    return out


NAMESPACE_SELECTOR_LABELS = {**NAMESPACE_LABELS, NAME_LABEL: NAMESPACES}


@st.composite
def cidrs(draw: st.DrawFn, with_excepts: bool = False) -> Obj:
    base, prefix = draw(pick(_CIDR_BASES)), draw(pick(_CIDR_PREFIXES))
    network = ip_network(f"{base}/{prefix}", strict=False)
    out: Obj = {"cidr": str(network)}
    if with_excepts and prefix < 32 and draw(BOOLEANS):
        longer = draw(st.integers(max(prefix + 1, 20), 32))
        inside = [a for a in POD_ADDRESSES if IPv4Address(a) in network]
        address = draw(pick(tuple(inside))) if inside else str(network.network_address)
        out["except"] = [str(ip_network(f"{address}/{longer}", strict=False))]
    return out


# --- Kubernetes NetworkPolicy --------------------------------------------------------------------


@st.composite
def network_policy(draw: st.DrawFn, namespace: str, name: str) -> Obj:
    def peer() -> Obj:
        shape = draw(pick(("pod", "namespace", "both", "ip")))
        if shape == "ip":
            return {"ipBlock": draw(cidrs(with_excepts=True))}
        out: Obj = {}
        if shape in ("pod", "both"):
            out["podSelector"] = draw(label_selectors(POD_LABELS))
        if shape in ("namespace", "both"):
            out["namespaceSelector"] = draw(label_selectors(NAMESPACE_SELECTOR_LABELS))
        return out

    def port() -> Obj:
        out: Obj = {}
        protocol = draw(pick((None, "TCP", "UDP", "SCTP")))
        if protocol:
            out["protocol"] = protocol
        shape = draw(pick(("absent", "number", "name", "range")))
        if shape == "number":
            out["port"] = draw(pick((53, 80, 443, 8080)))
        elif shape == "name":
            out["port"] = draw(pick(PORT_NAMES))
        elif shape == "range":
            start = out["port"] = draw(pick((50, 53, 80, 443)))
            out["endPort"] = draw(pick(tuple(e for e in (53, 80, 443, 8080) if e >= start)))
        return out

    def rules(peers_field: str) -> list[Obj]:
        out = []
        for _ in range(draw(pick((0, 1, 1, 2)))):
            rule: Obj = {}
            if not chance(draw, 3):
                rule[peers_field] = [peer() for _ in range(draw(pick((0, 1, 2))))]
            if draw(BOOLEANS):
                rule["ports"] = [port() for _ in range(draw(pick((1, 2))))]
            out.append(rule)
        return out

    spec: Obj = {"podSelector": draw(label_selectors(POD_LABELS))}
    types = draw(pick((None, ("Ingress",), ("Egress",), ("Ingress", "Egress"))))
    if types is not None:
        spec["policyTypes"] = list(types)
    if draw(BOOLEANS):
        spec["ingress"] = rules("from")
    if draw(BOOLEANS):
        spec["egress"] = rules("to")
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name, namespace), "spec": spec}


# --- Calico ----------------------------------------------------------------------------------------

#: Labels Calico selectors see on pods: their own, and Calico's derived ones.
CALICO_POD_LABELS: dict[str, tuple[str, ...]] = {
    **POD_LABELS,
    **SET_LABELS,
    "projectcalico.org/namespace": NAMESPACES,
    "projectcalico.org/serviceaccount": ACCOUNTS,
    "pcns.team": NAMESPACE_LABELS["team"],
    "pcsa.role": ACCOUNT_LABELS["role"],
}
CALICO_NAMESPACE_LABELS: dict[str, tuple[str, ...]] = {**NAMESPACE_LABELS, "projectcalico.org/name": NAMESPACES}
CALICO_ACCOUNT_LABELS: dict[str, tuple[str, ...]] = {**ACCOUNT_LABELS, "projectcalico.org/name": ACCOUNTS}


def _quoted(value: str) -> str:
    return f"'{value}'"


@st.composite
def calico_selectors(draw: st.DrawFn, vocabulary: Mapping[str, Sequence[str]], depth: int = 0) -> str:
    keys = tuple(vocabulary)
    shapes = ("eq", "eq", "has", "all", "ne", "in", "notin", "nothas", "starts", "ends", "contains")
    if depth < 2:
        shapes += ("and", "or", "not")
    shape = draw(pick(shapes))
    key = draw(pick(keys))
    value = "zzz" if chance(draw, 8) else draw(pick(tuple(vocabulary[key])))
    if shape == "eq":
        return f"{key} == {_quoted(value)}"
    if shape == "ne":
        return f"{key} != {_quoted(value)}"
    if shape in ("in", "notin"):
        values = draw(st.lists(pick(tuple(vocabulary[key])), min_size=1, max_size=2, unique=True))
        word = "in" if shape == "in" else "not in"
        return f"{key} {word} {{{', '.join(_quoted(v) for v in values)}}}"
    if shape == "has":
        return f"has({key})"
    if shape == "nothas":
        return f"!has({key})"
    if shape == "all":
        return "all()"
    if shape == "starts":
        return f"{key} starts with {_quoted(value[:1])}"
    if shape == "ends":
        return f"{key} ends with {_quoted(value[-1:])}"
    if shape == "contains":
        return f"{key} contains {_quoted(value[1:2])}"
    if shape == "not":
        return f"!({draw(calico_selectors(vocabulary, depth + 1))})"
    left = draw(calico_selectors(vocabulary, depth + 1))
    right = draw(calico_selectors(vocabulary, depth + 1))
    return f"({left}) {'&&' if shape == 'and' else '||'} ({right})"


_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP", 6, 17)
#: Source-port ranges that cover a client's ephemeral ports (32768-60999) or miss them all: the
#: kernel and the analysis agree on them whatever port the client picks. Named source ports
#: (NAMED_PORTS: 53, 80, 8080) and the destination numbers miss them too.
SOURCE_RANGES = ("1024:65535", "32768:60999", "1:65535", "1:1023", "61000:65535", "80:443", "30000:65535")
#: Ranges and numbers that split them (analysis-only clusters: read as not matching).
SPLIT_RANGES = ("40000:50000", "32768:40000", "1:32768", "60999:65535")
SPLIT_NUMBERS = (53, 80, 45000, 32768)


@st.composite
def calico_rule(draw: st.DrawFn, direction: str, global_: bool, kernel: bool, namespaces: Sequence[str]) -> Obj:
    rule: Obj = {"action": draw(pick(("Allow", "Allow", "Deny", "Pass", "Log")))}
    protocol = draw(pick((None, None, "TCP", "UDP", "ICMP", 6, 17, "SCTP")))
    if protocol is not None:
        rule["protocol"] = protocol
    if chance(draw, 5):
        rule["notProtocol"] = draw(pick(("TCP", "UDP", "ICMP")))
    if protocol == "ICMP":
        for field in ("icmp", "notICMP"):
            if chance(draw, 3):
                kind, code = draw(pick(((8, None), (8, 0), (0, None), (8, 1))))
                rule[field] = {"type": kind} if code is None else {"type": kind, "code": code}
    ip_version = None
    if chance(draw, 6):
        ip_version = rule["ipVersion"] = draw(pick((4, 4, 6))) if protocol != "ICMP" else 4

    def side(name: str) -> Obj:
        out: Obj = {}
        if draw(BOOLEANS):
            out["selector"] = draw(calico_selectors(CALICO_POD_LABELS))
        if chance(draw, 4):
            out["notSelector"] = draw(calico_selectors(CALICO_POD_LABELS))
        if chance(draw, 4):
            out["namespaceSelector"] = draw(pick(("all()", "global()"))) if chance(draw, 3) else draw(
                calico_selectors(CALICO_NAMESPACE_LABELS)
            )
        if ip_version != 6:
            for field in ("nets", "notNets"):
                if chance(draw, 4):
                    out[field] = [draw(cidrs())["cidr"] for _ in range(draw(pick((1, 2))))]
        numeric = protocol in _PORT_PROTOCOLS
        local_side = (direction == "ingress") == (name == "destination")
        for field in ("ports", "notPorts"):
            if chance(draw, 3):
                entries: list[Any] = []
                for _ in range(draw(pick((1, 2)))):
                    shape = draw(pick(("number", "range", "name", "string") if numeric else ("name",)))
                    if shape == "number":
                        entries.append(draw(pick((53, 80, 443, 8080) if name == "destination" or kernel else SPLIT_NUMBERS)))
                    elif shape == "string":
                        entries.append(str(draw(pick((53, 80)))))
                    elif shape == "range":
                        ranges = ("50:80", "80:443", "53:53", "1:65535")
                        if name == "source":
                            ranges = SOURCE_RANGES if kernel else SOURCE_RANGES + SPLIT_RANGES
                        entries.append(draw(pick(ranges)))
                    else:
                        entries.append(draw(pick(PORT_NAMES)))
                out[field] = entries
        if chance(draw, 5):
            accounts: Obj = {}
            if draw(BOOLEANS):
                accounts["names"] = some(draw, ACCOUNTS, 2) or ["robot"]
            if draw(BOOLEANS) or not accounts:
                accounts["selector"] = draw(calico_selectors(CALICO_ACCOUNT_LABELS))
            out["serviceAccounts"] = accounts
        # A Service names where traffic goes (egress) or comes from (ingress), never the policy's
        # own endpoint, and stands alone in its side.
        if not local_side and chance(draw, 8):
            services: Obj = {"name": "web-svc"}
            if global_ or draw(BOOLEANS):
                services["namespace"] = draw(pick(tuple(namespaces)))
            out = {"services": services}
            if name == "destination":
                rule.pop("protocol", None), rule.pop("icmp", None), rule.pop("notICMP", None)
        return out

    for name in ("source", "destination"):
        found = side(name)
        if found:
            rule[name] = found
    if "services" in rule.get("destination", {}) and rule.get("ipVersion") == 6:
        del rule["ipVersion"]
    # Ports in a side need the rule's protocol; a named port may go without.
    if rule.get("protocol") not in _PORT_PROTOCOLS:
        for name in ("source", "destination"):
            for field in ("ports", "notPorts"):
                entries = rule.get(name, {}).get(field)
                if entries is not None:
                    named = [e for e in entries if isinstance(e, str) and not e[0].isdigit()]
                    if named and rule.get("protocol") is None:
                        rule[name][field] = named
                    else:
                        del rule[name][field]
    if rule.get("notProtocol") == "ICMP" and rule.get("ipVersion") == 6:
        del rule["notProtocol"]  # ICMP is IPv4's: Calico refuses the pair
    return rule


@st.composite
def calico_policy(draw: st.DrawFn, namespace: str | None, name: str, tier: str | None, kernel: bool, namespaces: Sequence[str]) -> Obj:
    global_ = namespace is None
    spec: Obj = {}
    if tier is not None:
        spec["tier"] = tier
    if draw(BOOLEANS):
        spec["order"] = draw(pick((10, 100, 100, 500.5, 1000)))
    if not chance(draw, 3):
        spec["selector"] = draw(calico_selectors(CALICO_POD_LABELS))
    if global_ and chance(draw, 3):
        spec["namespaceSelector"] = draw(calico_selectors(CALICO_NAMESPACE_LABELS))
    if chance(draw, 5):
        spec["serviceAccountSelector"] = draw(calico_selectors(CALICO_ACCOUNT_LABELS))
    types = draw(pick((None, ("Ingress",), ("Egress",), ("Ingress", "Egress"))))
    if types is not None:
        spec["types"] = list(types)
    for direction in ("ingress", "egress"):
        if draw(BOOLEANS):
            spec[direction] = [
                draw(calico_rule(direction, global_, kernel, namespaces)) for _ in range(draw(pick((1, 1, 2, 3))))
            ]
    kind = "GlobalNetworkPolicy" if global_ else "NetworkPolicy"
    return {"apiVersion": draw(pick(("projectcalico.org/v3", "crd.projectcalico.org/v1"))), "kind": kind, "metadata": meta(name, namespace), "spec": spec}


# --- network-policy-api ----------------------------------------------------------------------------


@st.composite
def admin_policy(draw: st.DrawFn, kind: str, name: str) -> Obj:
    baseline = kind == "BaselineAdminNetworkPolicy"
    cluster = kind == "ClusterNetworkPolicy"

    def pods() -> Obj:
        out: Obj = {"podSelector": draw(label_selectors(POD_LABELS))}
        if not cluster or draw(BOOLEANS):
            out["namespaceSelector"] = draw(label_selectors(NAMESPACE_SELECTOR_LABELS))
        return out

    def subject() -> Obj:
        if draw(BOOLEANS):
            return {"namespaces": draw(label_selectors(NAMESPACE_SELECTOR_LABELS))}
        return {"pods": pods()}

    def peer(direction: str) -> Obj:
        shapes = ("namespaces", "pods") + (("networks", "nodes") if direction == "egress" else ())
        shape = draw(pick(shapes))
        if shape == "namespaces":
            return {"namespaces": draw(label_selectors(NAMESPACE_SELECTOR_LABELS))}
        if shape == "pods":
            return {"pods": pods()}
        if shape == "nodes":
            return {"nodes": draw(label_selectors({"zone": ("x", "y")}))}
        return {"networks": sorted({draw(cidrs())["cidr"] for _ in range(draw(pick((1, 2))))})}

    def ports(named_ok: bool) -> list[Obj]:
        out = []
        for _ in range(draw(pick((1, 2)))):
            shape = draw(pick(("number", "range", "name") if named_ok else ("number", "range")))
            protocol = draw(pick(("TCP", "UDP", "SCTP")))
            if cluster:
                if shape == "name":
                    out.append({"destinationNamedPort": draw(pick(PORT_NAMES))})
                elif shape == "number":
                    out.append({protocol.lower(): {"destinationPort": {"number": draw(pick((53, 80, 8080)))}}})
                else:
                    out.append({protocol.lower(): {"destinationPort": {"range": {"start": 53, "end": draw(pick((80, 8080)))}}}})
            elif shape == "name":
                out.append({"namedPort": draw(pick(PORT_NAMES))})
            elif shape == "number":
                out.append({"portNumber": {"protocol": protocol, "port": draw(pick((53, 80, 8080)))}})
            else:
                out.append({"portRange": {"protocol": protocol, "start": 53, "end": draw(pick((80, 8080)))}})
        return out

    actions = ("Allow", "Deny") if baseline else (("Accept", "Deny", "Pass") if cluster else ("Allow", "Deny", "Pass"))
    spec: Obj = {"subject": subject()}
    if cluster:
        spec["tier"] = draw(pick(("Admin", "Baseline")))
    if not baseline:
        spec["priority"] = draw(pick((0, 5, 10, 10, 50, 1000)))
    for direction, field in (("ingress", "from"), ("egress", "to")):
        if draw(BOOLEANS):
            rules = []
            for i in range(draw(pick((1, 1, 2, 3)))):
                peers = [peer(direction) for _ in range(draw(pick((1, 2))))]
                rule: Obj = {"action": draw(pick(actions)), field: peers}
                if draw(BOOLEANS):
                    rule["name"] = f"{direction}-{i}"
                if chance(draw, 3):
                    to_pods = all("namespaces" in p or "pods" in p for p in peers)
                    rule["protocols" if cluster else "ports"] = ports(named_ok=to_pods)
                rules.append(rule)
            spec[direction] = rules
    version = "policy.networking.k8s.io/v1alpha2" if cluster else "policy.networking.k8s.io/v1alpha1"
    return {"apiVersion": version, "kind": kind, "metadata": meta(name), "spec": spec}


# --- all policies ------------------------------------------------------------------------------------

_KINDS = ("calico", "anp", "np", "global", "set", "banp", "cnp", "np", "calico", "anp", "globalset", "global")
#: (name, order, default action) of the user tiers; None: no order (after every ordered tier).
_TIERS = (("security", 100, "Deny"), ("platform", 2000, "Pass"), ("late", None, "Deny"))


@st.composite
def policies(draw: st.DrawFn, layout: Layout, *, kernel: bool, most: int) -> list[Obj]:
    out: list[Obj] = []
    tiers_used: set[str] = set()
    # Kernel scenarios are few: each one has a couple of policies at least.
    count = draw(pick(tuple(range(2 if kernel else 0, most + 1)) + (most, most)))
    for i in range(count):
        kind = draw(pick(_KINDS))
        namespace = draw(pick(layout.namespaces))
        if kind == "np":
            out.append(draw(network_policy(namespace, f"np{i}")))
        elif kind in ("calico", "global"):
            tier = None
            if chance(draw, 3):
                tier = draw(pick(tuple(t[0] for t in _TIERS)))
                tiers_used.add(tier)
            elif chance(draw, 6):
                tier = "default"
            name = f"{tier}.c{i}" if tier not in (None, "default") else f"c{i}"
            out.append(draw(calico_policy(namespace if kind == "calico" else None, name, tier, kernel, layout.namespaces)))
        elif kind in ("set", "globalset"):
            nets = sorted({draw(cidrs())["cidr"] for _ in range(draw(pick((1, 2))))})
            labels = {"set": draw(pick(SET_LABELS["set"]))}
            if kind == "set":
                item = {"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet", "metadata": meta(f"s{i}", namespace, labels)}
            else:
                item = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": meta(f"s{i}", None, labels)}
            item["spec"] = {"nets": nets}
            out.append(item)
        elif kind == "banp":
            if not any(o["kind"] == "BaselineAdminNetworkPolicy" for o in out):
                out.append(draw(admin_policy("BaselineAdminNetworkPolicy", "default")))
        elif kind == "cnp":
            out.append(draw(admin_policy("ClusterNetworkPolicy", f"cnp{i}")))
        else:
            out.append(draw(admin_policy("AdminNetworkPolicy", f"anp{i}")))
    for name, order, action in _TIERS:
        if name in tiers_used:
            spec: Obj = {"defaultAction": action}
            if order is not None:
                spec["order"] = order
            out.append({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": meta(name), "spec": spec})
    return out


# --- text ------------------------------------------------------------------------------------------

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(objects: Iterable[Obj]) -> str:
    return "".join("---\n" + yaml.dump(o, Dumper=_Dumper, sort_keys=False) for o in objects)
