"""Wire model -> model. Kubernetes defaults are applied here, once.

Validation happened in the wire models (sources/schema); Checker turns their errors into
netfence's one-line messages with file, line, object and field path.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from ipaddress import ip_address, ip_network
from typing import Any

from pydantic import BaseModel, ValidationError

from netfence.errors import InputError, show
from netfence.model.endpoints import (
    NAMESPACE_NAME_LABEL,
    ContainerPort,
    Namespace,
    Node,
    Pod,
    Service,
    ServiceAccount,
    ServicePort,
)
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement
from netfence.model.policies import (
    Direction,
    IPBlock,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
)
from netfence.model.ports import Protocol
from netfence.sources.documents import Document, PathItem
from netfence.sources.schema import kubernetes as k8s
from netfence.sources.schema.checks import ERROR_TYPE, parse_ip

Path = tuple[PathItem, ...]


def format_path(path: Sequence[PathItem]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _split_field(field: str) -> Path:
    """`except[1]` -> ("except", 1)."""
    out: list[PathItem] = []
    for part in field.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) for i in indexes)
    return tuple(out)


class Checker:
    """Validates one document against its wire model and collects the problems."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[InputError] = []
        #: Legal input handled conservatively: one line each for stderr; loading goes on.
        self.warnings: list[str] = []

    def say(self, path: Path, message: str) -> None:
        self.problems.append(
            InputError(self.doc.location(path), message, obj=self.doc.label, field=format_path(path) or None)
        )

    def warn(self, path: Path, message: str) -> None:
        where = InputError(self.doc.location(path), message, obj=self.doc.label, field=format_path(path) or None)
        self.warnings.append(f"warning: {where}")

    def parse(self, model: type[BaseModel]) -> Any:
        """The validated wire object, or None (with every problem recorded)."""
        try:
            return model.model_validate(self.doc.body)
        except ValidationError as exc:
            for error in exc.errors():
                self._record(model, error)
            return None

    def _record(self, model: type[BaseModel], error: Any) -> None:
        # pydantic marks a mapping key's own error with a "[key]" step after the key; the key is
        # the field (its value is shown after "got").
        path: Path = tuple(step for step in error["loc"] if step != "[key]")
        kind = error["type"]
        if kind == ERROR_TYPE:
            ctx = error.get("ctx") or {}
            if ctx.get("field"):
                path = path + _split_field(ctx["field"])
            self.say(path, ctx["message"])
        elif kind == "missing":
            self.say(path, "required field is missing")
        elif kind == "extra_forbidden":
            known = _known_fields(model, path[:-1])
            hint = difflib.get_close_matches(str(path[-1]), known, n=1)
            expected = repr(hint[0]) if hint else "one of " + ", ".join(known)
            self.say(path, f"unknown field {path[-1]!r}; expected {expected}")
        else:
            self.say(path, f"expected {_EXPECTED.get(kind, error['msg'].lower())}, got {show(error.get('input'))}")


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


# --- kinds ------------------------------------------------------------------------------------


def _namespace_of(meta: k8s.ObjectMeta) -> str:
    return meta.namespace or "default"


def convert_namespace(check: Checker, wire: k8s.Namespace) -> Namespace:
    labels = dict(wire.metadata.labels or {})
    labels[NAMESPACE_NAME_LABEL] = wire.metadata.name  # set by the API server on every namespace
    return Namespace(wire.metadata.name, Labels(labels), check.doc.location())


def convert_pod(check: Checker, wire: k8s.Pod) -> Pod | None:
    if wire.status.phase in ("Succeeded", "Failed"):
        return None  # finished pods hold no address and take part in no traffic
    if wire.status.pod_ips:
        texts = [p.ip for p in wire.status.pod_ips]
    else:
        texts = [wire.status.pod_ip] if wire.status.pod_ip else []
    ips = tuple(dict.fromkeys(parse_ip(t) for t in texts))
    ports = tuple(
        ContainerPort(p.container_port, Protocol(p.protocol), p.name)
        for container in (*wire.spec.containers, *(wire.spec.init_containers or ()))
        for p in container.ports or ()
    )
    return Pod(
        namespace=_namespace_of(wire.metadata),
        name=wire.metadata.name,
        labels=Labels(wire.metadata.labels),
        ips=ips,
        node=wire.spec.node_name,
        service_account=wire.spec.service_account_name or "default",
        host_network=bool(wire.spec.host_network),
        ports=ports,
        location=check.doc.location(),
    )


def convert_service(check: Checker, wire: k8s.Service) -> Service:
    spec = wire.spec
    texts = spec.addresses
    return Service(
        namespace=_namespace_of(wire.metadata),
        name=wire.metadata.name,
        selector=Labels(spec.selector) if spec.selector is not None else None,
        ports=tuple(
            ServicePort(p.port, Protocol(p.protocol), p.name, p.target_port, p.node_port) for p in spec.ports or ()
        ),
        cluster_ips=tuple(ip_address(t) for t in texts if t not in ("None", "")),
        type=spec.type or "ClusterIP",
        labels=Labels(wire.metadata.labels),
        location=check.doc.location(),
        load_balancer_ips=tuple(
            dict.fromkeys(
                ip_address(entry.ip)
                for entry in (wire.status.load_balancer.ingress or () if wire.status.load_balancer else ())
                if entry.ip is not None
            )
        ),
        external_ips=tuple(dict.fromkeys(ip_address(t) for t in spec.external_ips or ())),
        external_traffic_policy=spec.external_traffic_policy or "Cluster",
    )


def convert_network_policy(check: Checker, wire: k8s.NetworkPolicy) -> NetworkPolicy:
    spec = wire.spec
    if spec.policy_types:
        types_ = {Direction.INGRESS if t == "Ingress" else Direction.EGRESS for t in spec.policy_types}
    else:
        # Defaulting as the API server does it: Ingress always; Egress when egress rules exist
        # (an empty `egress: []` does not count).
        types_ = {Direction.INGRESS} | ({Direction.EGRESS} if spec.egress else set())
    return NetworkPolicy(
        namespace=_namespace_of(wire.metadata),
        name=wire.metadata.name,
        pod_selector=convert_selector(spec.pod_selector),
        policy_types=frozenset(types_),
        ingress=tuple(_rule(r.from_, r.ports) for r in spec.ingress or ()),
        egress=tuple(_rule(r.to, r.ports) for r in spec.egress or ()),
        location=check.doc.location(),
    )


def convert_selector(wire: k8s.LabelSelector) -> LabelSelector:
    requirements = [Requirement(k, Operator.IN, (v,)) for k, v in sorted((wire.match_labels or {}).items())]
    requirements += [
        Requirement(e.key, Operator(e.operator), tuple(e.values or ())) for e in wire.match_expressions or ()
    ]
    return LabelSelector(tuple(requirements))


def _rule(peers: list[k8s.NetworkPolicyPeer] | None, ports: list[k8s.NetworkPolicyPort] | None) -> PolicyRule:
    # NetworkPolicy: an absent or empty `from`/`to` matches every peer; an absent or empty
    # `ports` matches every port and protocol.
    return PolicyRule(
        peers=tuple(_peer(p) for p in peers) if peers else None,
        ports=tuple(PolicyPort(Protocol(p.protocol), p.port, p.end_port) for p in ports) if ports else None,
    )


def _peer(wire: k8s.NetworkPolicyPeer) -> Peer:
    block = None
    if wire.ip_block is not None:
        excepts = tuple(ip_network(e, strict=False) for e in wire.ip_block.except_ or ())
        block = IPBlock(ip_network(wire.ip_block.cidr, strict=False), excepts)
    return Peer(
        pod_selector=convert_selector(wire.pod_selector) if wire.pod_selector is not None else None,
        namespace_selector=convert_selector(wire.namespace_selector) if wire.namespace_selector is not None else None,
        ip_block=block,
    )


def convert_service_account(check: Checker, wire: k8s.ServiceAccount) -> ServiceAccount:
    return ServiceAccount(
        namespace=_namespace_of(wire.metadata),
        name=wire.metadata.name,
        labels=Labels(wire.metadata.labels),
        location=check.doc.location(),
    )


def convert_node(check: Checker, wire: k8s.Node) -> Node:
    texts = [a.address for a in wire.status.addresses or () if a.type in k8s.NODE_ADDRESS_TYPES]
    return Node(
        name=wire.metadata.name,
        labels=Labels(wire.metadata.labels),
        addresses=tuple(dict.fromkeys(ip_address(t) for t in texts)),
        location=check.doc.location(),
    )
