"""Wire models of the network-policy-api kinds (policy.networking.k8s.io): AdminNetworkPolicy and
BaselineAdminNetworkPolicy (v1alpha1, peer shapes of v0.1.3 and later) and ClusterNetworkPolicy
(v1alpha2, rules with `protocols`).

The API server's CRD validation is made here, with the field path: exactly one field per subject,
peer and port; which peers each direction and kind allows; list sizes; port numbers; actions per
kind; named ports only towards pods; the one BaselineAdminNetworkPolicy named `default`. Two rules
the API documents without always enforcing them are enforced too: a port range's start below its
end, and domain names only in allowing rules. The peer shapes of v0.1.0-v0.1.2
(`namespaces: {namespaceSelector | sameLabels | notSameLabels}`, `pods: {namespaces: ...}`) are
rejected with the shape that replaced them.

A peer whose only fields are unknown here (and are no typo of a known one) was written for a newer
API: it is kept with `unknown_fields` set, so the converter can make its rule fail closed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, ModelWrapValidatorHandler, PrivateAttr, model_validator

from netfence.errors import show
from netfence.sources.schema.checks import CIDRText, PortNumber, Protocol, fail
from netfence.sources.schema.kubernetes import LabelSelector, ObjectMeta, Strict, SubdomainMeta

# --- values -------------------------------------------------------------------------------------

# DomainName in network-policy-api: an exact name, or `*.` followed by one, with an optional
# trailing dot.
_DOMAIN_NAME = re.compile(
    r"^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$"
)


def _values(*allowed: str) -> Callable[[Any], str]:
    expected = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"

    def check(value: Any) -> str:
        if value not in allowed:
            raise fail(f"expected {expected}, got {show(value)}")
        return str(value)

    return check


def _count(low: int, high: int, what: str) -> Callable[[list[Any]], list[Any]]:
    expected = f"{low}-{high}" if low else f"at most {high}"

    def check(value: list[Any]) -> list[Any]:
        if not low <= len(value) <= high:
            raise fail(f"expected {expected} {what}, got {len(value)}")
        return value

    return check


def _priority(value: Any) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1000):
        raise fail(f"expected an integer 0-1000, got {show(value)}")
    return value


def _rule_name(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected a string, got {show(value)}")
    if len(value) > 100:
        raise fail(f"expected at most 100 characters, got {len(value)}")
    return value


def _domain_name(value: Any) -> str:
    if not (isinstance(value, str) and len(value) <= 253 and _DOMAIN_NAME.fullmatch(value)):
        raise fail(f"expected a domain name such as example.com or *.example.com, got {show(value)}")
    return value


def _named_default(meta: ObjectMeta) -> ObjectMeta:
    if meta.name != "default":
        message = f"expected 'default' (the only name a BaselineAdminNetworkPolicy may have), got {show(meta.name)}"
        raise fail(message, "name")
    return meta


Priority = Annotated[Any, AfterValidator(_priority)]
RuleName = Annotated[Any, AfterValidator(_rule_name)]
DomainName = Annotated[Any, AfterValidator(_domain_name)]
AdminAction = Annotated[Any, AfterValidator(_values("Allow", "Deny", "Pass"))]
BaselineAction = Annotated[Any, AfterValidator(_values("Allow", "Deny"))]
ClusterAction = Annotated[Any, AfterValidator(_values("Accept", "Deny", "Pass"))]
Tier = Annotated[Any, AfterValidator(_values("Admin", "Baseline"))]
Networks = Annotated[list[CIDRText], AfterValidator(_count(1, 25, "CIDRs"))]
DomainNames = Annotated[list[DomainName], AfterValidator(_count(1, 25, "domain names"))]


def _set_fields(model: Strict) -> list[str]:
    """The fields (as written) that hold a value, in declaration order."""
    return [f.alias or n for n, f in type(model).model_fields.items() if getattr(model, n) is not None]


def _exactly_one(model: Strict, what: str) -> None:
    names = [f.alias or n for n, f in type(model).model_fields.items()]
    found = _set_fields(model)
    if not found:
        raise fail(f"{what} needs one of {', '.join(names)}")
    if len(found) > 1:
        raise fail(f"{what} sets exactly one of {', '.join(names)}; got {' and '.join(found)}")


class _OneOf(Strict):
    """Exactly one field set (upstream: minProperties = maxProperties = 1)."""

    what: ClassVar[str]

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, self.what)
        return self


# --- subjects and peers -------------------------------------------------------------------------


class NamespacedPod(Strict):
    """AdminNetworkPolicy and BaselineAdminNetworkPolicy: both selectors required."""

    namespace_selector: LabelSelector = Field(alias="namespaceSelector")
    pod_selector: LabelSelector = Field(alias="podSelector")


class ClusterNamespacedPod(Strict):
    """ClusterNetworkPolicy: a missing namespaceSelector selects every namespace."""

    namespace_selector: LabelSelector = Field(default=LabelSelector(), alias="namespaceSelector")
    pod_selector: LabelSelector = Field(alias="podSelector")


class Subject(_OneOf):
    what = "a subject"
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None


class ClusterSubject(_OneOf):
    what = "a subject"
    namespaces: LabelSelector | None = None
    pods: ClusterNamespacedPod | None = None


#: Every peer field of the API, any kind and direction, and NetworkPolicy's, which are mistakes
#: here: a key near one of these is a typo, not a field of a newer API version.
_PEER_WORDS = ("namespaces", "pods", "nodes", "networks", "domainNames", "podSelector", "namespaceSelector", "ipBlock")
_EGRESS_ONLY = {f: f"{f} peers are only allowed in egress rules" for f in ("nodes", "networks", "domainNames")}
_NEW_PODS = "pods: {namespaceSelector: <label selector>, podSelector: <label selector>}"


def _reject_old_shapes(data: dict[Any, Any]) -> None:
    """network-policy-api v0.1.0-v0.1.2 peers; v0.1.3 replaced them (sameLabels/notSameLabels have
    no replacement)."""
    namespaces, pods = data.get("namespaces"), data.get("pods")
    if isinstance(namespaces, dict):
        for key in ("namespaceSelector", "sameLabels", "notSameLabels"):
            if key in namespaces:
                raise fail(f"{key} was removed from the API; write namespaces: <label selector>", f"namespaces.{key}")
    if isinstance(pods, dict) and "namespaces" in pods:
        inner = pods["namespaces"]
        for key in ("sameLabels", "notSameLabels"):
            if isinstance(inner, dict) and key in inner:
                raise fail(f"{key} was removed from the API; write {_NEW_PODS}", f"pods.namespaces.{key}")
        raise fail(f"pods.namespaces was removed from the API; write {_NEW_PODS}", "pods.namespaces")


def _newer_api_fields(data: dict[Any, Any]) -> tuple[str, ...]:
    """The keys of a peer written for a newer API, or () if it is not one."""
    keys = [str(k) for k in data]
    if not keys or any(difflib.get_close_matches(k, _PEER_WORDS, n=1, cutoff=0.8) for k in keys):
        return ()
    return tuple(sorted(keys))


class _Peer(Strict):
    #: Fields of other directions or kinds, with what to say about them.
    misplaced: ClassVar[dict[str, str]] = {}
    _unknown: tuple[str, ...] = PrivateAttr(default=())

    @property
    def unknown_fields(self) -> tuple[str, ...]:
        """Set when the peer has none of the fields known here: it fails closed."""
        return self._unknown

    @model_validator(mode="wrap")
    @classmethod
    def _shape(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if isinstance(data, dict):
            _reject_old_shapes(data)
            for key, message in cls.misplaced.items():
                if key in data:
                    raise fail(message, key)
            unknown = _newer_api_fields(data)
            if unknown:
                peer = cls.model_construct()
                peer._unknown = unknown
                return peer
        peer = handler(data)
        _exactly_one(peer, "a peer")
        return peer


class IngressPeer(_Peer):
    misplaced = _EGRESS_ONLY
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None


class EgressPeer(_Peer):
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None
    nodes: LabelSelector | None = None
    networks: Networks | None = None
    domain_names: DomainNames | None = Field(default=None, alias="domainNames")


class BaselineEgressPeer(_Peer):
    misplaced = {"domainNames": "domainNames peers are only allowed in AdminNetworkPolicy and ClusterNetworkPolicy"}
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None
    nodes: LabelSelector | None = None
    networks: Networks | None = None


class ClusterIngressPeer(_Peer):
    misplaced = _EGRESS_ONLY
    namespaces: LabelSelector | None = None
    pods: ClusterNamespacedPod | None = None


class ClusterEgressPeer(_Peer):
    namespaces: LabelSelector | None = None
    pods: ClusterNamespacedPod | None = None
    nodes: LabelSelector | None = None
    networks: Networks | None = None
    domain_names: DomainNames | None = Field(default=None, alias="domainNames")


# --- ports --------------------------------------------------------------------------------------


class NumberedPort(Strict):
    protocol: Protocol = "TCP"
    port: PortNumber


class ClusterPortRange(Strict):
    """Both ends included; the API asks start < end."""

    start: PortNumber
    end: PortNumber

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise fail(f"expected a port number above start {self.start}, got {self.end}", "end")
        return self


class PortRange(ClusterPortRange):
    protocol: Protocol = "TCP"


class AdminNetworkPolicyPort(_OneOf):
    what = "a port"
    port_number: NumberedPort | None = Field(default=None, alias="portNumber")
    port_range: PortRange | None = Field(default=None, alias="portRange")
    named_port: str | None = Field(default=None, alias="namedPort")


class ClusterPort(_OneOf):
    what = "a destinationPort"
    number: PortNumber | None = None
    range: ClusterPortRange | None = None


class ProtocolMatch(Strict):
    # Optional upstream, but the object must not be empty: in effect required.
    destination_port: ClusterPort = Field(alias="destinationPort")


class ClusterNetworkPolicyProtocol(_OneOf):
    what = "a protocol entry"
    tcp: ProtocolMatch | None = None
    udp: ProtocolMatch | None = None
    sctp: ProtocolMatch | None = None
    destination_named_port: str | None = Field(default=None, alias="destinationNamedPort")


# --- rules --------------------------------------------------------------------------------------


def _check_egress(
    peers: Sequence[_Peer], ports: Sequence[Strict], named: tuple[str, str], action: str, allow: str
) -> None:
    """Domain names only in allowing rules; named ports only towards pods. `named`: the attribute
    of a port entry's named port and its path, with {} for the entry's index."""
    for i, peer in enumerate(peers):
        if getattr(peer, "domain_names", None) is not None and action != allow:
            message = f"domainNames peers are only allowed in {allow} rules, got action {action}"
            raise fail(message, f"to[{i}].domainNames")
    without = [f for f in ("networks", "nodes", "domainNames") if any(f in _set_fields(p) for p in peers)]
    if without:
        attribute, path = named
        for i, port in enumerate(ports):
            if getattr(port, attribute) is not None:
                message = f"a named port cannot be used with {' or '.join(without)} peers, which have no named ports"
                raise fail(message, path.format(i))


Ports = Annotated[list[AdminNetworkPolicyPort], AfterValidator(_count(1, 100, "ports"))]
Protocols = Annotated[list[ClusterNetworkPolicyProtocol], AfterValidator(_count(1, 25, "protocols"))]


class AdminIngressRule(Strict):
    name: RuleName | None = None
    action: AdminAction
    from_: Annotated[list[IngressPeer], AfterValidator(_count(1, 100, "peers"))] = Field(alias="from")
    ports: Ports | None = None


class AdminEgressRule(Strict):
    name: RuleName | None = None
    action: AdminAction
    to: Annotated[list[EgressPeer], AfterValidator(_count(1, 100, "peers"))]
    ports: Ports | None = None

    @model_validator(mode="after")
    def _peers_and_ports(self) -> Self:
        _check_egress(self.to, self.ports or (), ("named_port", "ports[{}].namedPort"), self.action, "Allow")
        return self


class BaselineIngressRule(Strict):
    name: RuleName | None = None
    action: BaselineAction
    from_: Annotated[list[IngressPeer], AfterValidator(_count(1, 100, "peers"))] = Field(alias="from")
    ports: Ports | None = None


class BaselineEgressRule(Strict):
    name: RuleName | None = None
    action: BaselineAction
    to: Annotated[list[BaselineEgressPeer], AfterValidator(_count(1, 100, "peers"))]
    ports: Ports | None = None

    @model_validator(mode="after")
    def _peers_and_ports(self) -> Self:
        _check_egress(self.to, self.ports or (), ("named_port", "ports[{}].namedPort"), self.action, "Allow")
        return self


def _reject_ports(data: Any) -> Any:
    # Drafts of v1alpha2 had ANP-style `ports`; the released API matches with `protocols`.
    if isinstance(data, dict) and "ports" in data:
        raise fail(
            "ClusterNetworkPolicy has no ports; write protocols: [{tcp: {destinationPort: {number: 80}}}]", "ports"
        )
    return data


class ClusterIngressRule(Strict):
    name: RuleName | None = None
    action: ClusterAction
    from_: Annotated[list[ClusterIngressPeer], AfterValidator(_count(1, 25, "peers"))] = Field(alias="from")
    protocols: Protocols | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_ports(cls, data: Any) -> Any:
        return _reject_ports(data)


class ClusterEgressRule(Strict):
    name: RuleName | None = None
    action: ClusterAction
    to: Annotated[list[ClusterEgressPeer], AfterValidator(_count(1, 25, "peers"))]
    protocols: Protocols | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_ports(cls, data: Any) -> Any:
        return _reject_ports(data)

    @model_validator(mode="after")
    def _peers_and_ports(self) -> Self:
        named = ("destination_named_port", "protocols[{}].destinationNamedPort")
        _check_egress(self.to, self.protocols or (), named, self.action, "Accept")
        return self


# --- objects ------------------------------------------------------------------------------------


class AdminNetworkPolicySpec(Strict):
    priority: Priority
    subject: Subject
    ingress: Annotated[list[AdminIngressRule], AfterValidator(_count(0, 100, "rules"))] | None = None
    egress: Annotated[list[AdminEgressRule], AfterValidator(_count(0, 100, "rules"))] | None = None


class AdminNetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: AdminNetworkPolicySpec
    status: dict[str, Any] | None = None


class BaselineAdminNetworkPolicySpec(Strict):
    subject: Subject
    ingress: Annotated[list[BaselineIngressRule], AfterValidator(_count(0, 100, "rules"))] | None = None
    egress: Annotated[list[BaselineEgressRule], AfterValidator(_count(0, 100, "rules"))] | None = None


class BaselineAdminNetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: Annotated[ObjectMeta, AfterValidator(_named_default)]
    spec: BaselineAdminNetworkPolicySpec
    status: dict[str, Any] | None = None


class ClusterNetworkPolicySpec(Strict):
    tier: Tier
    priority: Priority
    subject: ClusterSubject
    ingress: Annotated[list[ClusterIngressRule], AfterValidator(_count(0, 25, "rules"))] | None = None
    egress: Annotated[list[ClusterEgressRule], AfterValidator(_count(0, 25, "rules"))] | None = None


class ClusterNetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: ClusterNetworkPolicySpec
    status: dict[str, Any] | None = None
