"""egress-without-dns: pods isolated for egress that cannot reach DNS on UDP and TCP port 53.

A default deny of egress blocks name lookups too, and nearly every workload needs them. For each
pod some policy selects for egress, its egress side is evaluated for UDP/53 and TCP/53 (TCP
carries answers too large for UDP) towards the DNS pods (labelled k8s-app=kube-dns, as CoreDNS
and kube-dns are), NodeLocal DNSCache's address 169.254.20.10, and one address of every address
block the policies selecting it name; one allowed target is enough. Without DNS pods in the
inventory, a pod is reported only when no Allow rule of those policies admits port 53 at all.

The finding goes to the policy that denied: the rule that did, or for isolation the policy of
that tier without egress rules (the default deny) when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

from netfence.analysis.lint.context import Context
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.analysis.verdict import Flow, Party, Reason, SideVerdict, evaluate
from netfence.ir.types import Action, EndpointInfo, EndpointKind, PolicyRef, Rule
from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol

DNS_LABEL = ("k8s-app", "kube-dns")
NODE_LOCAL_DNS = ip_address("169.254.20.10")
DNS_PORTS = (FlowPort(Protocol.UDP, 53), FlowPort(Protocol.TCP, 53))


def run(context: Context) -> Iterator[Finding]:
    key, value = DNS_LABEL
    dns = [context.endpoint(p.id) for p in context.pods if p.labels.get(key) == value]
    dns_pods = [Party.of(e) for e in dns if e is not None]
    dns_ids = {p.label for p in dns_pods}
    isolated: set[EndpointId] = set()
    for tier in context.ruleset.egress:
        for policy in tier.policies:
            isolated |= policy.subjects
    blamed: dict[PolicyRef, dict[tuple[str, ...], list[EndpointId]]] = {}
    for endpoint in sorted(isolated):
        info = context.endpoint(endpoint)
        if info is None or info.kind is not EndpointKind.POD or endpoint in dns_ids:
            continue
        targets = dns_pods + [Party.outside(a) for a in _addresses(context, endpoint)]
        missing: list[str] = []
        culprit: SideVerdict | None = None
        for port in DNS_PORTS:
            side = _first_allowed(context, info, targets, port)
            if side is None:
                continue  # allowed
            if not dns_pods and _could_allow(context, endpoint, port):
                continue  # the DNS pods are not loaded: cannot tell
            missing.append(str(port))
            culprit = culprit or side
        if missing and culprit is not None:
            ref = _blame(context, culprit)
            if ref is not None:
                blamed.setdefault(ref, {}).setdefault(tuple(missing), []).append(endpoint)
    entries = {entry.ref: entry for entry in context.policies}
    for ref, by_ports in blamed.items():
        entry = entries.get(ref)
        if entry is None:
            continue
        for ports, pods in sorted(by_ports.items()):
            towards = f"the DNS pods ({dns_pods[0].label}{', ...' if len(dns_pods) > 1 else ''})" if dns_pods else "anywhere"
            shown = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
            yield CHECK.finding(
                entry.label,
                entry.location,
                f"isolates {len(pods)} pod{'s' if len(pods) != 1 else ''} for egress ({shown}) with no "
                f"{' or '.join(ports)} allowed to {towards}: they cannot resolve names",
                "allow egress on UDP and TCP port 53 to the DNS pods, e.g. to: namespaceSelector "
                "kubernetes.io/metadata.name=kube-system with podSelector k8s-app=kube-dns in the same peer",
                ("spec", "egress"),
            )


def _first_allowed(context: Context, info: EndpointInfo, targets: list[Party], port: FlowPort) -> SideVerdict | None:
    """None when some target is allowed; else the egress side of the first target's verdict."""
    first: SideVerdict | None = None
    ruleset = context.reduced(Direction.EGRESS, info.id)
    for target in targets:
        side = evaluate(ruleset, Flow(Party.of(info), target, port)).egress
        if side.allowed:
            return None
        first = first or side
    return first


def _addresses(context: Context, endpoint: EndpointId) -> list[IPAddress]:
    """NodeLocal DNSCache's address and one address of every block the egress rules of the
    policies selecting the endpoint name."""
    found: list[IPAddress] = [NODE_LOCAL_DNS]
    for rule in _rules(context, endpoint):
        for peer in rule.peers or ():
            for block in peer.blocks:
                for candidate in (block.network.network_address, block.network.broadcast_address):
                    if block.contains(candidate) and candidate not in found:
                        found.append(candidate)
                        break
    return found


def _rules(context: Context, endpoint: EndpointId) -> Iterator[Rule]:
    for tier in context.reduced(Direction.EGRESS, endpoint).egress:
        for policy in tier.policies:
            yield from policy.rules


def _could_allow(context: Context, endpoint: EndpointId, port: FlowPort) -> bool:
    """Whether an Allow rule of the policies selecting the endpoint admits the port towards some
    destination (a named port might)."""
    for rule in _rules(context, endpoint):
        if rule.action is not Action.ALLOW:
            continue
        if rule.constrains_source_port and not rule.matches_source_port(port.protocol, context.endpoint(endpoint)):
            continue
        if any(entry.name is not None for entry in rule.ports or ()):
            return True
        if rule.matches_port(port, None) and (rule.ports is None or any(e.matches(port, None) for e in rule.ports)):
            return True
    return False


def _blame(context: Context, side: SideVerdict) -> PolicyRef | None:
    if side.reason is Reason.RULE and side.rule is not None:
        return side.rule.policy
    if side.reason is not Reason.ISOLATED or side.endpoint is None:
        return None
    me = side.endpoint
    chosen = [
        policy
        for tier in context.ruleset.egress
        if tier.name == side.tier
        for policy in tier.policies
        if me in policy.subjects
    ]
    if not chosen:
        return None
    deny_all = [p for p in chosen if not p.rules]
    return (deny_all or chosen)[0].ref


CHECK = Check("egress-without-dns", Severity.WARNING, "Default-deny egress without a DNS exception", run)
