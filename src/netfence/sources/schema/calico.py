"""Wire models of the Calico kinds netfence reads: NetworkPolicy, GlobalNetworkPolicy, Tier,
NetworkSet, GlobalNetworkSet and HostEndpoint.

`projectcalico.org/v3` (calicoctl, the Calico API server) and `crd.projectcalico.org/v1` (the CRDs
underneath) carry the same schema, so one set of models serves both. Specs and rules forbid
unknown fields, so a typo such as `notSelecter` is an error. Values come out of validation already
parsed into model values (Selector, CalicoPort, Protocol, actions), so each is parsed once.

Every check Calico's API validation makes on these fields is made here, with the field path; a
check that spans fields reports each problem it finds, not just the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from ipaddress import ip_network
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from netfence.errors import show
from netfence.model.calico import CalicoAction, CalicoPort, TierDefaultAction
from netfence.model.calico_selector import GlobalOf, Selector, SelectorError, parse_selector
from netfence.model.ports import PROTOCOL_NUMBERS, Protocol, RuleProtocol
from netfence.sources.schema.checks import (
    CalicoGlobalPolicyName,
    CalicoPolicyName,
    CIDROrIP,
    DNSLabelName,
    IPText,
    LabelMap,
    PolicyType,
    PortNumber,
    fail,
    is_port_name,
    is_port_number,
)
from netfence.sources.schema.kubernetes import ObjectMeta, Strict, SubdomainMeta

#: (field path relative to the model being checked, message)
Problem = tuple[str | None, str]

_DIGITS = re.compile(r"^[0-9]+$")
#: Calico's interface names (the API's interfaceRegex).
_INTERFACE = re.compile(r"[a-zA-Z0-9_.-]{1,15}")
#: Calico's own label on network sets, derived from the namespace.
NAMESPACE_LABEL = "projectcalico.org/namespace"
_RANGE = re.compile(r"^([0-9]+):([0-9]+)$")
_BY_NUMBER: dict[int, Protocol] = {number: protocol for protocol, number in PROTOCOL_NUMBERS.items()}
#: Calico's spellings, exactly (its API validation is case-sensitive): TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite.
_NAMED: dict[str, Protocol] = {protocol.value: protocol for protocol in Protocol}
#: Protocols whose rules may test ports (numorstring.Protocol.SupportsPorts: 6, 17, 132).
_PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_ICMP_PROTOCOLS = (Protocol.ICMP, Protocol.ICMPV6)


def _raise_all(title: str, problems: Sequence[Problem]) -> None:
    """Report every problem of a model check at once (each becomes one message)."""
    if problems:
        details = [InitErrorDetails(type=fail(message, field), loc=(), input=None) for field, message in problems]
        raise ValidationError.from_exception_data(title, details)


def _one_of(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- field values -----------------------------------------------------------------------------


def _parsed_selector(value: Any) -> Selector:
    if not isinstance(value, str):
        raise fail(f"expected a selector (a string), got {show(value)}")
    try:
        return parse_selector(value)
    except SelectorError as exc:
        raise fail(f"invalid selector: {exc.message} at position {exc.position}") from None


def _selector(value: Any) -> Selector:
    selector = _parsed_selector(value)
    if selector.uses_global():
        raise fail("global() can only be used in a rule's namespaceSelector")
    return selector


def _rule_namespace_selector(value: Any) -> Selector:
    selector = _parsed_selector(value)
    # Calico: "global() cannot be combined with other selectors".
    if selector.uses_global() and not isinstance(selector.expr, GlobalOf):
        raise fail("global() cannot be combined with other selectors")
    return selector


def _action(value: Any) -> CalicoAction:
    if not isinstance(value, str) or value not in {a.value for a in CalicoAction}:
        raise fail(f"expected Allow, Deny, Log or Pass, got {show(value)}")
    return CalicoAction(value)


def _protocol_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)  # numorstring: a string of digits is the number
    return None


def _rule_protocol(value: Any) -> RuleProtocol:
    number = _protocol_number(value)
    if number is not None and 1 <= number <= 255:
        # A number and its name are the same protocol.
        return _BY_NUMBER.get(number, number)
    if number is None and isinstance(value, str) and value in _NAMED:
        return _NAMED[value]
    raise fail(f"expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a protocol number 1-255, got {show(value)}")


def _endpoint_protocol(value: Any) -> Protocol:
    number = _protocol_number(value)
    if number is not None:
        protocol = _BY_NUMBER.get(number)
    else:
        protocol = _NAMED.get(value) if isinstance(value, str) else None
    if protocol is None or protocol not in _PORT_PROTOCOLS:
        raise fail(f"expected TCP, UDP or SCTP, got {show(value)}")
    return protocol


def _calico_port(value: Any) -> CalicoPort:
    if is_port_number(value):
        return CalicoPort(value, value)
    if isinstance(value, str):
        if _DIGITS.fullmatch(value) and is_port_number(int(value)):
            return CalicoPort(int(value), int(value))
        found = _RANGE.fullmatch(value)
        if found is not None:
            start, end = int(found[1]), int(found[2])
            if is_port_number(start) and is_port_number(end):
                if start > end:
                    raise fail(f"expected a port range start:end with start <= end, got {show(value)}")
                return CalicoPort(start, end)
        elif not _DIGITS.fullmatch(value) and is_port_name(value):
            return CalicoPort(name=value)
    raise fail(
        "expected a port number 1-65535, a range such as '8000:8080' or a port name (IANA service name), "
        f"got {show(value)}"
    )


def _icmp_type(value: Any) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 254):
        raise fail(f"expected an ICMP type 0-254, got {show(value)}")
    return value


def _icmp_code(value: Any) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255):
        raise fail(f"expected an ICMP code 0-255, got {show(value)}")
    return value


def _ip_version(value: Any) -> int:
    if isinstance(value, bool) or value not in (4, 6):
        raise fail(f"expected 4 or 6, got {show(value)}")
    return int(value)


def _order(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(f"expected a number, got {show(value)}")
    return float(value)


def _tier_default_action(value: Any) -> TierDefaultAction:
    if not isinstance(value, str) or value not in {a.value for a in TierDefaultAction}:
        raise fail(f"expected Deny or Pass, got {show(value)}")
    return TierDefaultAction(value)


def _unique_types(types: list[str]) -> list[str]:
    for i, kind in enumerate(types):
        if kind in types[:i]:
            raise fail(f"{kind} is listed twice", f"[{i}]")
    return types


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"expected a name, got {show(value)}")
    return value


def _port_name(value: Any) -> str:
    if not is_port_name(value):
        raise fail(f"expected a port name (IANA service name), got {show(value)}")
    return str(value)


SelectorValue = Annotated[Any, AfterValidator(_selector)]
RuleNamespaceSelector = Annotated[Any, AfterValidator(_rule_namespace_selector)]
ActionValue = Annotated[Any, AfterValidator(_action)]
RuleProtocolValue = Annotated[Any, AfterValidator(_rule_protocol)]
EndpointProtocol = Annotated[Any, AfterValidator(_endpoint_protocol)]
PortValue = Annotated[Any, AfterValidator(_calico_port)]
ICMPType = Annotated[Any, AfterValidator(_icmp_type)]
ICMPCode = Annotated[Any, AfterValidator(_icmp_code)]
IPVersion = Annotated[Any, AfterValidator(_ip_version)]
Order = Annotated[Any, AfterValidator(_order)]
TierAction = Annotated[Any, AfterValidator(_tier_default_action)]
Name = Annotated[Any, AfterValidator(_name)]
PortName = Annotated[Any, AfterValidator(_port_name)]
PolicyTypes = Annotated[list[PolicyType], AfterValidator(_unique_types)]


def is_set(value: Selector | Sequence[Any] | None) -> bool:
    """Calico omits empty values: an empty selector or list is the same as none."""
    if isinstance(value, Selector):
        return bool(value.text.strip())
    return bool(value)


# --- rules ------------------------------------------------------------------------------------


class ICMPFields(Strict):
    type: ICMPType | None = None
    code: ICMPCode | None = None

    @model_validator(mode="after")
    def _code_needs_type(self) -> ICMPFields:
        if self.code is not None and self.type is None:
            raise fail("an ICMP code needs an ICMP type", "code")
        return self


class ServiceAccountMatch(Strict):
    names: list[str] | None = None
    selector: SelectorValue | None = None


class ServiceMatch(Strict):
    name: Name
    namespace: str | None = None


class EntityRule(Strict):
    nets: list[CIDROrIP] | None = None
    not_nets: list[CIDROrIP] | None = Field(default=None, alias="notNets")
    selector: SelectorValue | None = None
    not_selector: SelectorValue | None = Field(default=None, alias="notSelector")
    namespace_selector: RuleNamespaceSelector | None = Field(default=None, alias="namespaceSelector")
    ports: list[PortValue] | None = None
    not_ports: list[PortValue] | None = Field(default=None, alias="notPorts")
    service_accounts: ServiceAccountMatch | None = Field(default=None, alias="serviceAccounts")
    services: ServiceMatch | None = None

    @model_validator(mode="after")
    def _services_alone(self) -> EntityRule:
        if self.services is not None:
            others = [
                name
                for name, value in (
                    ("selector", self.selector),
                    ("notSelector", self.not_selector),
                    ("namespaceSelector", self.namespace_selector),
                    ("nets", self.nets),
                    ("notNets", self.not_nets),
                )
                if is_set(value)
            ]
            if self.service_accounts is not None:
                others.append("serviceAccounts")
            if others:
                raise fail(f"services cannot be combined with {_one_of(others)}", "services")
        return self


class RuleMetadata(Strict):
    annotations: dict[str, str] | None = None


class Rule(Strict):
    action: ActionValue
    protocol: RuleProtocolValue | None = None
    not_protocol: RuleProtocolValue | None = Field(default=None, alias="notProtocol")
    icmp: ICMPFields | None = None
    not_icmp: ICMPFields | None = Field(default=None, alias="notICMP")
    ip_version: IPVersion | None = Field(default=None, alias="ipVersion")
    source: EntityRule = EntityRule()
    destination: EntityRule = EntityRule()
    # Application-layer (HTTP) matching needs a proxy netfence does not model; such a rule is
    # refused rather than read as matching every TCP connection.
    http: Any = None
    metadata: RuleMetadata | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        _raise_all("Rule", self.problems())
        return self

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if self.http is not None:
            found.append(("http", "application-layer rules are not supported"))
        for side_name, side in (("source", self.source), ("destination", self.destination)):
            for field, ports in (("ports", side.ports), ("notPorts", side.not_ports)):
                if not ports:
                    continue
                where = f"{side_name}.{field}"
                if self.protocol is None:
                    # Calico accepts named ports without a protocol (the named port brings its own).
                    if any(p.name is None for p in ports):
                        found.append((where, "a port number or range needs the rule's protocol to be TCP, UDP or SCTP"))
                elif self.protocol not in _PORT_PROTOCOLS:
                    got = _shown(self.protocol)
                    found.append((where, f"ports need the rule's protocol to be TCP, UDP or SCTP, got {got}"))
        if self.destination.services is not None and (self.destination.ports or self.destination.not_ports):
            message = "services cannot be combined with ports or notPorts in a destination"
            found.append(("destination.services", message))
        for field, icmp in (("icmp", self.icmp), ("notICMP", self.not_icmp)):
            if icmp is not None and self.protocol not in _ICMP_PROTOCOLS:
                found.append((field, f"{field} needs the rule's protocol to be ICMP or ICMPv6"))
        for field, protocol in (("protocol", self.protocol), ("notProtocol", self.not_protocol)):
            needs = {Protocol.ICMP: 4, Protocol.ICMPV6: 6}.get(protocol) if isinstance(protocol, Protocol) else None
            if needs is not None and self.ip_version is not None and self.ip_version != needs:
                found.append(("ipVersion", f"{field} {protocol} needs ipVersion {needs}, got {self.ip_version}"))
        found += self._net_families()
        return found

    def _net_families(self) -> list[Problem]:
        """Calico: one rule tests one address family, the one its ipVersion names if any."""
        found: list[Problem] = []
        family = self.ip_version
        for side_name, side in (("source", self.source), ("destination", self.destination)):
            for field, nets in (("nets", side.nets), ("notNets", side.not_nets)):
                for i, text in enumerate(nets or ()):
                    version = ip_network(text, strict=False).version
                    if family is None:
                        family = version
                    elif version != family:
                        if self.ip_version is not None:
                            why = f"the rule's ipVersion is {family}"
                        else:
                            why = f"the rule's other nets are IPv{family}"
                        message = f"expected an IPv{family} CIDR ({why}), got {show(text)}"
                        found.append((f"{side_name}.{field}[{i}]", message))
        return found


def _shown(protocol: RuleProtocol) -> str:
    return show(protocol.value if isinstance(protocol, Protocol) else protocol)


# --- policies ---------------------------------------------------------------------------------


class PolicySpec(Strict):
    """What NetworkPolicy and GlobalNetworkPolicy specs share."""

    #: Empty or omitted: the default tier.
    tier: str | None = None
    order: Order | None = None
    selector: SelectorValue | None = None
    service_account_selector: SelectorValue | None = Field(default=None, alias="serviceAccountSelector")
    types: PolicyTypes | None = None
    ingress: list[Rule] | None = None
    egress: list[Rule] | None = None
    # Hints to Calico's dataplane; they never change what is enforced.
    performance_hints: list[str] | None = Field(default=None, alias="performanceHints")

    @model_validator(mode="after")
    def _consistent(self) -> PolicySpec:
        _raise_all(type(self).__name__, self.problems())
        return self

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        # services name where traffic goes to (egress) or comes from (ingress), never the
        # policy's own endpoint.
        for i, rule in enumerate(self.ingress or ()):
            if rule.destination.services is not None:
                message = "services are only allowed in an ingress rule's source"
                found.append((f"ingress[{i}].destination.services", message))
        for i, rule in enumerate(self.egress or ()):
            if rule.source.services is not None:
                message = "services are only allowed in an egress rule's destination"
                found.append((f"egress[{i}].source.services", message))
        return found


class NetworkPolicySpec(PolicySpec):
    # GlobalNetworkPolicy fields, named here only to say so (an unknown-field message would
    # suggest a look-alike field instead).
    namespace_selector: Any = Field(default=None, alias="namespaceSelector")
    do_not_track: Any = Field(default=None, alias="doNotTrack")
    pre_dnat: Any = Field(default=None, alias="preDNAT")
    apply_on_forward: Any = Field(default=None, alias="applyOnForward")

    def problems(self) -> list[Problem]:
        found = super().problems()
        if self.namespace_selector is not None:
            found.append(
                (
                    "namespaceSelector",
                    "only a GlobalNetworkPolicy has a namespaceSelector; a NetworkPolicy applies in its own namespace",
                )
            )
        host_options = (("doNotTrack", self.do_not_track), ("preDNAT", self.pre_dnat))
        for field, value in (*host_options, ("applyOnForward", self.apply_on_forward)):
            if value is not None:
                found.append((field, f"only a GlobalNetworkPolicy has {field} (it applies to host endpoints)"))
        return found


class GlobalNetworkPolicySpec(PolicySpec):
    namespace_selector: SelectorValue | None = Field(default=None, alias="namespaceSelector")
    do_not_track: bool | None = Field(default=None, alias="doNotTrack")
    pre_dnat: bool | None = Field(default=None, alias="preDNAT")
    apply_on_forward: bool | None = Field(default=None, alias="applyOnForward")

    def problems(self) -> list[Problem]:
        found = super().problems()
        # A GlobalNetworkPolicy has no namespace for a Service name to default to.
        sides = (("ingress", "source", self.ingress), ("egress", "destination", self.egress))
        for direction, side_name, rules in sides:
            for i, rule in enumerate(rules or ()):
                services = getattr(rule, side_name).services
                if services is not None and not services.namespace:
                    where = f"{direction}[{i}].{side_name}.services.namespace"
                    found.append((where, "required in a GlobalNetworkPolicy (it has no namespace to default to)"))
        if self.do_not_track and self.pre_dnat:
            found.append(("preDNAT", "preDNAT and doNotTrack cannot both be true"))
        if (self.do_not_track or self.pre_dnat) and not self.apply_on_forward:
            found.append(("applyOnForward", "must be true when doNotTrack or preDNAT is true"))
        if self.pre_dnat and self.egress:
            found.append(("egress", "a preDNAT policy cannot have egress rules"))
        if self.pre_dnat and "Egress" in (self.types or ()):
            found.append(("types", "a preDNAT policy cannot have type Egress"))
        return found


class PolicyMeta(ObjectMeta):
    name: CalicoPolicyName


class GlobalPolicyMeta(ObjectMeta):
    name: CalicoGlobalPolicyName


class TierMeta(ObjectMeta):
    # Tier names appear inside policy names (tier.name): no dots.
    name: DNSLabelName


def _no_namespace_label(labels: dict[str, str]) -> dict[str, str]:
    if NAMESPACE_LABEL in labels:
        raise fail(f"{NAMESPACE_LABEL} is set by Calico and cannot be written on a network set", NAMESPACE_LABEL)
    return labels


class NetworkSetMeta(SubdomainMeta):
    labels: Annotated[LabelMap, AfterValidator(_no_namespace_label)] | None = None


def _interface(value: Any) -> str:
    if value != "*" and not (isinstance(value, str) and _INTERFACE.fullmatch(value)):
        raise fail(f"expected an interface name (at most 15 letters, digits, '_', '.' and '-') or '*', got {show(value)}")
    return str(value)


class NetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: PolicyMeta
    spec: NetworkPolicySpec = NetworkPolicySpec()
    # Written by the API server (conditions such as Valid); not used.
    status: dict[str, Any] | None = None


class GlobalNetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: GlobalPolicyMeta
    spec: GlobalNetworkPolicySpec = GlobalNetworkPolicySpec()
    status: dict[str, Any] | None = None


# --- tiers, network sets, host endpoints ------------------------------------------------------


class TierSpec(Strict):
    order: Order | None = None
    default_action: TierAction | None = Field(default=None, alias="defaultAction")


class Tier(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: TierMeta
    spec: TierSpec = TierSpec()
    status: dict[str, Any] | None = None


class NetworkSetSpec(Strict):
    nets: list[CIDROrIP] | None = None


class NetworkSet(Strict):
    """NetworkSet (namespaced) and GlobalNetworkSet: the same shape."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: NetworkSetMeta
    spec: NetworkSetSpec = NetworkSetSpec()


class EndpointPort(Strict):
    name: PortName
    port: PortNumber
    protocol: EndpointProtocol


class HostEndpointSpec(Strict):
    node: Name
    interface_name: Annotated[str, AfterValidator(_interface)] | None = Field(default=None, alias="interfaceName")
    expected_ips: list[IPText] | None = Field(default=None, alias="expectedIPs")
    profiles: list[str] | None = None
    ports: list[EndpointPort] | None = None

    @model_validator(mode="after")
    def _interface_or_ips(self) -> HostEndpointSpec:
        # Calico: the endpoint is found by its interface name or, without one, by its addresses.
        if not self.interface_name and not self.expected_ips:
            raise fail("a host endpoint needs interfaceName or expectedIPs")
        return self


class HostEndpoint(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: HostEndpointSpec

