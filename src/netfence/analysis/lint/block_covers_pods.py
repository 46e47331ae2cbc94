"""block-covers-pods: an ipBlock (Calico nets, AdminNetworkPolicy networks) that covers pod
addresses.

NetworkPolicy means ipBlock for addresses outside the cluster: pod addresses change as pods come
and go, and whether ipBlock matches pod-to-pod traffic is left to the implementation. Calico nets
and ANP networks do match pods (an ANP denying 0.0.0.0/0 denies pod-to-pod traffic too), which
is as often a surprise as intended. Pods are the non-hostNetwork pods loaded; an `except` that
removes their addresses clears the finding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from ipaddress import IPv4Network, IPv6Network

from netfence.analysis.lint.context import AnyPolicy, Context, direction_field, peer_field, sample
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import CidrBlock
from netfence.model.calico import CalicoPolicy
from netfence.model.endpoints import Pod
from netfence.model.policies import Direction, NetworkPolicy


def run(context: Context) -> Iterator[Finding]:
    pods = [p for p in context.pods if p.ips]
    if not pods:
        return
    network = _pod_network(pods)
    for entry in context.policies:
        policy = entry.policy
        for direction in Direction:
            for index, what, block, field, kind in _blocks(policy, direction):
                covered = [p for p in pods if any(block.contains(a) for a in p.ips)]
                if not covered:
                    continue
                if len(covered) == len(pods):
                    count = f"every pod's address ({len(covered)} pods)"
                else:
                    count = f"the addresses of {len(covered)} pods"
                examples = sample([f"{p.id} {p.ips[0]}" for p in covered], 2)
                if kind == "ipBlock":
                    meaning = (
                        "ipBlock is meant for addresses outside the cluster: pod addresses change when pods are "
                        "rescheduled, and whether ipBlock matches traffic between pods is left to the implementation"
                    )
                    hint = f"select pods with podSelector/namespaceSelector, and add the pod network ({network}) to except"
                else:
                    meaning = f"{kind} match pod addresses too, so this rule also applies to traffic between pods"
                    hint = f"if only addresses outside the cluster were meant, leave out the pod network ({network})"
                yield CHECK.finding(
                    entry.label,
                    entry.location,
                    f"{direction}[{index}]: {what} covers {count}: {examples}; {meaning}",
                    hint,
                    ("spec", direction_field(direction), index, *field),
                )


Located = tuple[int, str, CidrBlock, tuple[str | int, ...], str]


def _blocks(policy: AnyPolicy, direction: Direction) -> Iterator[Located]:
    """(rule index, description, block, field below the rule, kind) of every address block."""
    if isinstance(policy, NetworkPolicy):
        for index, rule in enumerate(policy.rules(direction)):
            for j, peer in enumerate(rule.peers or ()):
                if peer.ip_block is not None:
                    block = CidrBlock(peer.ip_block.cidr, peer.ip_block.excepts)
                    yield index, f"ipBlock {peer.ip_block}", block, (peer_field(direction), j, "ipBlock"), "ipBlock"
    elif isinstance(policy, CalicoPolicy):
        for index, calico in enumerate(policy.rules(direction)):
            for side in ("source", "destination"):
                for k, net in enumerate(getattr(calico, side).nets):
                    yield index, f"{side}.nets {net}", CidrBlock(net), (side, "nets", k), "nets"
    else:
        for index, admin in enumerate(policy.rules(direction)):
            for j, admin_peer in enumerate(admin.peers):
                for k, net in enumerate(admin_peer.networks):
                    yield index, f"networks {net}", CidrBlock(net), (peer_field(direction), j, "networks", k), "networks"


def _pod_network(pods: Sequence[Pod]) -> str:
    """The smallest network holding every pod address, per IP family (for hints)."""
    found = []
    for network_type, bits in ((IPv4Network, 32), (IPv6Network, 128)):
        values = [int(a) for p in pods for a in p.ips if a.max_prefixlen == bits]
        if values:
            low, high = min(values), max(values)
            prefix = bits - (low ^ high).bit_length()
            found.append(str(network_type((low >> (bits - prefix) << (bits - prefix), prefix))))
    return ", ".join(found)


CHECK = Check("block-covers-pods", Severity.WARNING, "An ipBlock, nets or networks covering pod addresses", run)
