"""Calico wire models -> model. Calico's API defaults are applied here, once.

Validation happened in the wire models (sources/schema/calico.py); what is left is filling in what
Calico's API layer fills in when an object is created: the tier, the policy types, the namespace
of a Service a rule names.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address, ip_network

from netfence.model.calico import (
    DEFAULT_TIER,
    CalicoPolicy,
    CalicoRule,
    EntityRule,
    HostEndpoint,
    HostEndpointPort,
    IcmpMatch,
    NetworkSet,
    ServiceAccountMatch,
    ServiceMatch,
    Tier,
    TierDefaultAction,
)
from netfence.model.calico_selector import Selector
from netfence.model.labels import Labels
from netfence.model.policies import Direction, IPNetwork, PolicyKind
from netfence.sources.convert import Checker
from netfence.sources.schema import calico as wire
from netfence.sources.schema.kubernetes import ObjectMeta


def convert_network_policy(check: Checker, obj: wire.NetworkPolicy) -> CalicoPolicy:
    namespace = _namespace_of(obj.metadata)
    return _policy(check, PolicyKind.CALICO_NETWORK_POLICY, namespace, obj.metadata.name, obj.spec)


def convert_global_network_policy(check: Checker, obj: wire.GlobalNetworkPolicy) -> CalicoPolicy:
    spec = obj.spec
    return _policy(
        check,
        PolicyKind.GLOBAL_NETWORK_POLICY,
        None,
        obj.metadata.name,
        spec,
        namespace_selector=_given(spec.namespace_selector),
        do_not_track=bool(spec.do_not_track),
        pre_dnat=bool(spec.pre_dnat),
        apply_on_forward=bool(spec.apply_on_forward),
    )


def convert_tier(check: Checker, obj: wire.Tier) -> Tier:
    return Tier(
        name=obj.metadata.name,
        order=obj.spec.order,
        default_action=obj.spec.default_action or TierDefaultAction.DENY,
        location=check.doc.location(),
    )


def convert_network_set(check: Checker, obj: wire.NetworkSet) -> NetworkSet:
    return _network_set(check, obj, _namespace_of(obj.metadata))


def convert_global_network_set(check: Checker, obj: wire.NetworkSet) -> NetworkSet:
    return _network_set(check, obj, None)


def convert_host_endpoint(check: Checker, obj: wire.HostEndpoint) -> HostEndpoint:
    spec = obj.spec
    return HostEndpoint(
        name=obj.metadata.name,
        labels=Labels(obj.metadata.labels),
        node=spec.node,
        interface_name=spec.interface_name or None,
        expected_ips=tuple(dict.fromkeys(ip_address(text) for text in spec.expected_ips or ())),
        profiles=tuple(spec.profiles or ()),
        ports=tuple(HostEndpointPort(p.name, p.port, p.protocol) for p in spec.ports or ()),
        location=check.doc.location(),
    )


# --- parts ------------------------------------------------------------------------------------


def _namespace_of(meta: ObjectMeta) -> str:
    return meta.namespace or "default"


def _policy(
    check: Checker,
    kind: PolicyKind,
    namespace: str | None,
    name: str,
    spec: wire.PolicySpec,
    *,
    namespace_selector: Selector | None = None,
    do_not_track: bool = False,
    pre_dnat: bool = False,
    apply_on_forward: bool = False,
) -> CalicoPolicy:
    if spec.types:
        types = frozenset(Direction.INGRESS if t == "Ingress" else Direction.EGRESS for t in spec.types)
    else:
        # Calico's API layer fills in types from the rules: Egress alone when there are egress
        # rules and no ingress rules, both when there are both, otherwise Ingress.
        types = frozenset(
            ({Direction.INGRESS} if spec.ingress or not spec.egress else set())
            | ({Direction.EGRESS} if spec.egress else set())
        )
        if check.doc.body.get("apiVersion") == "crd.projectcalico.org/v1":
            # Written straight into the CRD, the object skips that defaulting, and Calico's
            # dataplane reads empty types as both directions.
            chosen = " and ".join(sorted(str(t).capitalize() for t in types))
            check.warn(
                ("spec", "types"),
                f"types omitted; netfence applies Calico's API default ({chosen}), but a "
                "crd.projectcalico.org/v1 object written directly is enforced for both directions: set types",
            )
    return CalicoPolicy(
        kind=kind,
        namespace=namespace,
        name=name,
        tier=spec.tier or DEFAULT_TIER,
        order=spec.order,
        selector=_given(spec.selector) or Selector(""),
        namespace_selector=namespace_selector,
        service_account_selector=_given(spec.service_account_selector),
        types=types,
        ingress=tuple(_rule(r, namespace) for r in spec.ingress or ()),
        egress=tuple(_rule(r, namespace) for r in spec.egress or ()),
        do_not_track=do_not_track,
        pre_dnat=pre_dnat,
        apply_on_forward=apply_on_forward,
        types_defaulted=not spec.types,
        location=check.doc.location(),
    )


def _given(selector: Selector | None) -> Selector | None:
    """Calico writes an unset selector as the empty string: both are no selector."""
    return selector if wire.is_set(selector) else None


def _rule(rule: wire.Rule, namespace: str | None) -> CalicoRule:
    return CalicoRule(
        action=rule.action,
        protocol=rule.protocol,
        not_protocol=rule.not_protocol,
        icmp=IcmpMatch(rule.icmp.type, rule.icmp.code) if rule.icmp is not None else None,
        not_icmp=IcmpMatch(rule.not_icmp.type, rule.not_icmp.code) if rule.not_icmp is not None else None,
        ip_version=rule.ip_version,
        source=_entity(rule.source, namespace),
        destination=_entity(rule.destination, namespace),
    )


def _entity(side: wire.EntityRule, namespace: str | None) -> EntityRule:
    accounts = None
    if side.service_accounts is not None and (side.service_accounts.names or _given(side.service_accounts.selector)):
        accounts = ServiceAccountMatch(
            names=tuple(side.service_accounts.names or ()), selector=_given(side.service_accounts.selector)
        )
    services = None
    if side.services is not None:
        # A Service named without a namespace is in the policy's own (a GlobalNetworkPolicy
        # must name it: checked in the wire model).
        services = ServiceMatch(side.services.name, side.services.namespace or namespace or "")
    return EntityRule(
        nets=_nets(side.nets),
        not_nets=_nets(side.not_nets),
        selector=_given(side.selector),
        not_selector=_given(side.not_selector),
        namespace_selector=_given(side.namespace_selector),
        ports=tuple(side.ports or ()),
        not_ports=tuple(side.not_ports or ()),
        service_accounts=accounts,
        services=services,
    )


def _nets(texts: Sequence[str] | None) -> tuple[IPNetwork, ...]:
    return tuple(dict.fromkeys(ip_network(text, strict=False) for text in texts or ()))


def _network_set(check: Checker, obj: wire.NetworkSet, namespace: str | None) -> NetworkSet:
    return NetworkSet(
        namespace=namespace,
        name=obj.metadata.name,
        labels=Labels(obj.metadata.labels),
        nets=_nets(obj.spec.nets),
        location=check.doc.location(),
    )
