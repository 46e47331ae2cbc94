"""peer-matches-nothing: a peer (or a Calico rule side) that matches no endpoint: the rule it is in
admits (or denies) nobody through it.

Judged on the IR, where selectors are resolved: a peer matches nothing when it names no endpoint,
no address block and no network set. ipBlock, nets and networks peers always match addresses;
AdminNetworkPolicy `nodes` peers are judged only when Node objects are loaded, `domainNames`
never (they cannot be resolved from an inventory).
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, PolicyEntry, direction_field, peer_field
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import PeerMatch
from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy, EntityRule
from netfence.model.policies import Direction, NetworkPolicy, Peer

HINT = "compare the selectors with the labels of the pods and namespaces; a peer that matches nothing has no effect"


def _empty(peer: PeerMatch) -> bool:
    return not peer.any_address and not peer.endpoints and not peer.blocks


def run(context: Context) -> Iterator[Finding]:
    for entry in context.policies:
        for direction in Direction:
            if isinstance(entry.policy, NetworkPolicy):
                yield from _network_policy(context, entry, entry.policy, direction)
            elif isinstance(entry.policy, CalicoPolicy):
                yield from _calico(context, entry, entry.policy, direction)
            else:
                yield from _admin(context, entry, entry.policy, direction)


def _network_policy(
    context: Context, entry: PolicyEntry, policy: NetworkPolicy, direction: Direction
) -> Iterator[Finding]:
    if context.rules(entry.ref, direction) is None:
        return
    word = peer_field(direction)
    for index, rule in enumerate(policy.rules(direction)):
        for ir in context.ir_rules(entry.ref, direction, index)[:1]:
            for j, peer in enumerate(rule.peers or ()):
                match = (ir.peers or ())[j]
                if peer.ip_block is not None or not _empty(match):
                    continue
                yield CHECK.finding(
                    entry.label,
                    entry.location,
                    f"{direction}[{index}].{word}[{j}] matches no pod: {_why(context, policy, peer)}",
                    HINT,
                    ("spec", direction_field(direction), index, word, j),
                )


def _why(context: Context, policy: NetworkPolicy, peer: Peer) -> str:
    if peer.namespace_selector is None:
        namespaces = [policy.namespace]
        where = f"namespace {policy.namespace}"
    else:
        namespaces = [n for n in context.namespaces if peer.namespace_selector.matches(context.namespace_labels(n))]
        if not namespaces:
            return f"namespaceSelector {peer.namespace_selector} matches no namespace"
        where = f"the namespaces namespaceSelector {peer.namespace_selector} matches ({', '.join(namespaces[:3])}"
        where += ", ...)" if len(namespaces) > 3 else ")"
    if peer.pod_selector is None:
        return f"no pod runs in {where}"
    return f"podSelector {peer.pod_selector} matches no pod in {where}"


def _calico(context: Context, entry: PolicyEntry, policy: CalicoPolicy, direction: Direction) -> Iterator[Finding]:
    if context.rules(entry.ref, direction) is None:
        return
    for index, rule in enumerate(policy.rules(direction)):
        irs = context.ir_rules(entry.ref, direction, index)
        remote_name, local_name = ("source", "destination")
        if direction is Direction.EGRESS:
            remote_name, local_name = local_name, remote_name
        remote: EntityRule = getattr(rule, remote_name)
        local: EntityRule = getattr(rule, local_name)
        where = ("spec", direction_field(direction), index)
        if remote.services is not None and not irs:
            service = f"{remote.services.namespace}/{remote.services.name}"
            yield CHECK.finding(
                entry.label,
                entry.location,
                f"{direction}[{index}].{remote_name}.services: service {service} has no endpoints "
                "(no such Service, or its selector matches no pod)",
                "check the service name and namespace, and the Service's selector",
                (*where, remote_name, "services"),
            )
            continue
        if remote.has_selector_fields and irs and all(ir.peers and all(_empty(p) for p in ir.peers) for ir in irs):
            yield CHECK.finding(
                entry.label,
                entry.location,
                f"{direction}[{index}].{remote_name} ({_side(remote)}) matches no endpoint or network set",
                HINT,
                (*where, remote_name),
            )
        if local.has_selector_fields and irs and all(ir.local is not None and _empty(ir.local) for ir in irs):
            yield CHECK.finding(
                entry.label,
                entry.location,
                f"{direction}[{index}].{local_name} ({_side(local)}) matches none of the endpoints the policy "
                "selects: the rule never applies",
                HINT,
                (*where, local_name),
            )


def _side(entity: EntityRule) -> str:
    parts = []
    if entity.selector is not None:
        parts.append(f"selector {entity.selector}")
    if entity.namespace_selector is not None:
        parts.append(f"namespaceSelector {entity.namespace_selector}")
    if entity.service_accounts is not None:
        accounts = entity.service_accounts
        named = [*accounts.names, *([str(accounts.selector)] if accounts.selector is not None else [])]
        parts.append("serviceAccounts " + ", ".join(named))
    if entity.not_selector is not None and not parts:
        parts.append(f"notSelector {entity.not_selector}")
    return "; ".join(parts)


def _admin(context: Context, entry: PolicyEntry, policy: AdminPolicy, direction: Direction) -> Iterator[Finding]:
    if context.rules(entry.ref, direction) is None:
        return
    word = peer_field(direction)
    for index, rule in enumerate(policy.rules(direction)):
        irs = context.ir_rules(entry.ref, direction, index)
        if not irs or irs[0].peers is None:
            continue  # a rule that fails closed (a peer of a newer API): the loader warned
        by_index = {p.index: p for p in irs[0].peers}
        for j, peer in enumerate(rule.peers):
            match = by_index.get(j)
            if match is None or not _empty(match):
                continue
            if peer.namespaces is not None or peer.pods is not None:
                what = "pod"
            elif peer.nodes is not None and context.inventory.nodes:
                what = "node"
            else:
                continue  # networks never; domainNames cannot be judged; nodes without Node objects
            yield CHECK.finding(
                entry.label,
                entry.location,
                f"{direction}[{index}].{word}[{j}] matches no {what}",
                HINT,
                ("spec", direction_field(direction), index, word, j),
            )


CHECK = Check("peer-matches-nothing", Severity.WARNING, "A peer matches no pod", run)
