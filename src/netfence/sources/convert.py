"""Wire model -> model. Kubernetes defaults are applied here, once, and every value the API
server would reject is reported with its field path."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from ipaddress import ip_address, ip_network
from typing import Any

from pydantic import BaseModel, ValidationError

from netfence.errors import InputError
from netfence.model.endpoints import (
    NAMESPACE_NAME_LABEL,
    ContainerPort,
    IPAddress,
    Namespace,
    Pod,
    Service,
    ServicePort,
)
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement
from netfence.model.policies import (
    Direction,
    IPBlock,
    IPNetwork,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
)
from netfence.model.ports import PORT_PROTOCOLS, Protocol
from netfence.sources.documents import Document, PathItem
from netfence.sources.schema import kubernetes as k8s

Path = tuple[PathItem, ...]

# IANA_SVC_NAME as the API server checks it: 1-15 characters, lowercase letters, digits and
# '-', at least one letter, no '-' at either end and no '--'.
_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def format_path(path: Sequence[PathItem]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


class Checker:
    """Collects the problems of one document, each with its line and field path."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[InputError] = []

    def fail(self, path: Path, expected: str, got: object) -> None:
        self.problems.append(
            InputError.expected(self.doc.location(path), format_path(path), expected, got, obj=self.doc.label)
        )

    def say(self, path: Path, message: str) -> None:
        self.problems.append(
            InputError(self.doc.location(path), message, obj=self.doc.label, field=format_path(path) or None)
        )

    def parse(self, model: type[BaseModel]) -> Any:
        """Validate the document's body against a wire model; None (and problems) on failure."""
        try:
            return model.model_validate(self.doc.body)
        except ValidationError as exc:
            for error in exc.errors():
                self._pydantic_problem(model, error)
            return None

    def _pydantic_problem(self, model: type[BaseModel], error: Any) -> None:
        path: Path = tuple(error["loc"])
        kind, value = error["type"], error.get("input")
        if kind == "missing":
            self.say(path, "required field is missing")
        elif kind == "extra_forbidden":
            known = _known_fields(model, path[:-1])
            hint = difflib.get_close_matches(str(path[-1]), known, n=1)
            expected = f"one of the fields {', '.join(known)}" if not hint else f"{hint[0]!r}"
            self.say(path, f"unknown field {path[-1]!r}; expected {expected}")
        else:
            self.fail(path, _EXPECTED.get(kind, error["msg"].lower()), value)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _known_fields(model: type[BaseModel], path: Path) -> list[str]:
    """The field names (as written in YAML) of the model found at `path` inside `model`."""
    current: Any = model
    for step in path:
        if isinstance(step, int):
            continue
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        if step not in fields:
            return []
        current = _model_in(fields[step].annotation)
        if current is None:
            return []
    return sorted((f.alias or n) for n, f in current.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


# --- shared pieces ----------------------------------------------------------------------------


def convert_selector(check: Checker, wire: k8s.LabelSelector, path: Path) -> LabelSelector:
    requirements = [Requirement(k, Operator.IN, (v,)) for k, v in sorted((wire.match_labels or {}).items())]
    for i, expr in enumerate(wire.match_expressions or ()):
        at = (*path, "matchExpressions", i)
        try:
            operator = Operator(expr.operator)
        except ValueError:
            check.fail((*at, "operator"), "one of In, NotIn, Exists, DoesNotExist", expr.operator)
            continue
        values = tuple(expr.values or ())
        if operator in (Operator.IN, Operator.NOT_IN) and not values:
            check.say((*at, "values"), f"operator {operator} needs at least one value")
            continue
        if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
            check.say((*at, "values"), f"operator {operator} takes no values")
            continue
        requirements.append(Requirement(expr.key, operator, values))
    return LabelSelector(tuple(requirements))


def convert_protocol(check: Checker, value: str | None, path: Path) -> Protocol | None:
    if value is None:
        return Protocol.TCP
    if value not in {p.value for p in PORT_PROTOCOLS}:
        check.fail(path, "TCP, UDP or SCTP", value)
        return None
    return Protocol(value)


def valid_port_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def valid_port_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(_SVC_NAME.match(value))
        and "--" not in value
        and any(c.isalpha() for c in value)
    )


def namespace_of(wire_meta: k8s.ObjectMeta) -> str:
    return wire_meta.namespace or "default"


# --- kinds ------------------------------------------------------------------------------------


def convert_namespace(check: Checker, wire: k8s.Namespace) -> Namespace:
    labels = dict(wire.metadata.labels or {})
    labels[NAMESPACE_NAME_LABEL] = wire.metadata.name
    return Namespace(wire.metadata.name, Labels(labels), check.doc.location())


def _addresses(check: Checker, texts: Sequence[tuple[Path, str]]) -> tuple[IPAddress, ...]:
    found: list[IPAddress] = []
    for path, text in texts:
        try:
            address = ip_address(text)
        except ValueError:
            check.fail(path, "an IPv4 or IPv6 address", text)
            continue
        if address not in found:
            found.append(address)
    return tuple(found)


def convert_pod(check: Checker, wire: k8s.Pod) -> Pod | None:
    if wire.status.phase in ("Succeeded", "Failed"):
        # Finished pods hold no address and take part in no traffic.
        return None
    texts: list[tuple[Path, str]] = []
    if wire.status.pod_ips:
        texts = [(("status", "podIPs", i, "ip"), p.ip) for i, p in enumerate(wire.status.pod_ips)]
    elif wire.status.pod_ip:
        texts = [(("status", "podIP"), wire.status.pod_ip)]
    ports: list[ContainerPort] = []
    containers = [("containers", wire.spec.containers), ("initContainers", wire.spec.init_containers or [])]
    for field, group in containers:
        for ci, container in enumerate(group):
            for pi, port in enumerate(container.ports or ()):
                at: Path = ("spec", field, ci, "ports", pi)
                protocol = convert_protocol(check, port.protocol, (*at, "protocol"))
                if not valid_port_number(port.container_port):
                    check.fail((*at, "containerPort"), "a port number 1-65535", port.container_port)
                elif protocol is not None:
                    ports.append(ContainerPort(port.container_port, protocol, port.name))
    return Pod(
        namespace=namespace_of(wire.metadata),
        name=wire.metadata.name,
        labels=Labels(wire.metadata.labels),
        ips=_addresses(check, texts),
        node=wire.spec.node_name,
        service_account=wire.spec.service_account_name or "default",
        host_network=bool(wire.spec.host_network),
        ports=tuple(ports),
        location=check.doc.location(),
    )


def convert_service(check: Checker, wire: k8s.Service) -> Service:
    ports: list[ServicePort] = []
    for i, port in enumerate(wire.spec.ports or ()):
        at: Path = ("spec", "ports", i)
        protocol = convert_protocol(check, port.protocol, (*at, "protocol"))
        target = port.target_port
        if target is not None and not (valid_port_number(target) or valid_port_name(target)):
            check.fail((*at, "targetPort"), "a port number 1-65535 or a port name", target)
            continue
        if not valid_port_number(port.port):
            check.fail((*at, "port"), "a port number 1-65535", port.port)
            continue
        if protocol is not None:
            ports.append(ServicePort(port.port, protocol, port.name, target, port.node_port))
    ips = wire.spec.cluster_ips or ([wire.spec.cluster_ip] if wire.spec.cluster_ip else [])
    addresses = [(("spec", "clusterIPs", i), ip) for i, ip in enumerate(ips) if ip and ip != "None"]
    return Service(
        namespace=namespace_of(wire.metadata),
        name=wire.metadata.name,
        selector=Labels(wire.spec.selector) if wire.spec.selector is not None else None,
        ports=tuple(ports),
        cluster_ips=_addresses(check, addresses),
        type=wire.spec.type or "ClusterIP",
        labels=Labels(wire.metadata.labels),
        location=check.doc.location(),
    )


def convert_network_policy(check: Checker, wire: k8s.NetworkPolicy) -> NetworkPolicy:
    spec = wire.spec
    types_: set[Direction] = set()
    for i, value in enumerate(spec.policy_types or ()):
        if value == "Ingress":
            types_.add(Direction.INGRESS)
        elif value == "Egress":
            types_.add(Direction.EGRESS)
        else:
            check.fail(("spec", "policyTypes", i), "Ingress or Egress", value)
    if not spec.policy_types:
        # Defaulting as the API server does it: Ingress always; Egress when egress rules exist
        # (an empty `egress: []` does not count).
        types_ = {Direction.INGRESS} | ({Direction.EGRESS} if spec.egress else set())
    ingress = tuple(
        _rule(check, rule.from_, rule.ports, ("spec", "ingress", i), "from")
        for i, rule in enumerate(spec.ingress or ())
    )
    egress = tuple(
        _rule(check, rule.to, rule.ports, ("spec", "egress", i), "to") for i, rule in enumerate(spec.egress or ())
    )
    return NetworkPolicy(
        namespace=namespace_of(wire.metadata),
        name=wire.metadata.name,
        pod_selector=convert_selector(check, spec.pod_selector, ("spec", "podSelector")),
        policy_types=frozenset(types_),
        ingress=ingress,
        egress=egress,
        location=check.doc.location(),
    )


def _rule(
    check: Checker,
    peers: list[k8s.NetworkPolicyPeer] | None,
    ports: list[k8s.NetworkPolicyPort] | None,
    path: Path,
    peers_field: str,
) -> PolicyRule:
    # NetworkPolicy: an absent or empty `from`/`to` matches every peer; an absent or empty
    # `ports` matches every port and protocol.
    converted_peers = tuple(_peer(check, p, (*path, peers_field, i)) for i, p in enumerate(peers or ()))
    converted_ports = tuple(_port(check, p, (*path, "ports", i)) for i, p in enumerate(ports or ()))
    return PolicyRule(peers=converted_peers or None, ports=converted_ports or None)


def _peer(check: Checker, wire: k8s.NetworkPolicyPeer, path: Path) -> Peer:
    if wire.ip_block is not None and (wire.pod_selector is not None or wire.namespace_selector is not None):
        check.say(path, "a peer is either an ipBlock or pod/namespace selectors, not both")
    if wire.ip_block is None and wire.pod_selector is None and wire.namespace_selector is None:
        check.say(path, "a peer needs podSelector, namespaceSelector or ipBlock")
    return Peer(
        pod_selector=convert_selector(check, wire.pod_selector, (*path, "podSelector"))
        if wire.pod_selector is not None
        else None,
        namespace_selector=convert_selector(check, wire.namespace_selector, (*path, "namespaceSelector"))
        if wire.namespace_selector is not None
        else None,
        ip_block=_ip_block(check, wire.ip_block, (*path, "ipBlock")) if wire.ip_block is not None else None,
    )


def _network(check: Checker, text: str, path: Path) -> IPNetwork | None:
    try:
        return ip_network(text, strict=False)
    except ValueError:
        check.fail(path, "a CIDR such as 10.0.0.0/16 or fd00::/64", text)
        return None


def _ip_block(check: Checker, wire: k8s.IPBlock, path: Path) -> IPBlock | None:
    cidr = _network(check, wire.cidr, (*path, "cidr"))
    excepts: list[IPNetwork] = []
    for i, text in enumerate(wire.except_ or ()):
        net = _network(check, text, (*path, "except", i))
        if net is None or cidr is None:
            continue
        if net.version != cidr.version or not net.subnet_of(cidr) or net == cidr:  # type: ignore[arg-type]
            check.fail((*path, "except", i), f"a CIDR strictly inside {cidr}", text)
            continue
        excepts.append(net)
    return IPBlock(cidr, tuple(excepts)) if cidr is not None else None


def _port(check: Checker, wire: k8s.NetworkPolicyPort, path: Path) -> PolicyPort:
    protocol = convert_protocol(check, wire.protocol, (*path, "protocol")) or Protocol.TCP
    port = wire.port
    if port is not None and not valid_port_number(port):
        if isinstance(port, str) and not valid_port_name(port):
            check.fail((*path, "port"), "a port number 1-65535 or a port name (IANA service name)", port)
        elif not isinstance(port, str):
            check.fail((*path, "port"), "a port number 1-65535 or a port name", port)
    end = wire.end_port
    if end is not None:
        if not isinstance(port, int) or isinstance(port, bool):
            check.say((*path, "endPort"), "endPort needs a numeric port")
        elif not 1 <= end <= 65535:
            check.fail((*path, "endPort"), "a port number 1-65535", end)
        elif end < port:
            check.fail((*path, "endPort"), f"a port number not below port {port}", end)
    return PolicyPort(protocol, port, end)
