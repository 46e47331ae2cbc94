"""AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy -> IR policy rules."""

from __future__ import annotations

from collections.abc import Callable

from netfence.ir.types import Action, CidrBlock, PeerMatch, PolicyRef, PolicyRules, PortMatch, Rule, RuleRef
from netfence.model.admin import AdminAction, AdminPeer, AdminPolicy, AdminRule, AdminSubject, PodsSelector
from netfence.model.endpoints import EndpointId
from netfence.model.inventory import Inventory
from netfence.model.labels import LabelSelector
from netfence.model.policies import Direction

ACTIONS = {AdminAction.ALLOW: Action.ALLOW, AdminAction.DENY: Action.DENY, AdminAction.PASS: Action.PASS}


class AdminBuilder:
    def __init__(
        self,
        inventory: Inventory,
        pods: Callable[[Callable[[str], bool], LabelSelector | None], frozenset[EndpointId]],
        namespaces: Callable[[LabelSelector], Callable[[str], bool]],
    ) -> None:
        self.inventory = inventory
        self._pods = pods
        self._namespaces = namespaces

    def policy_rules(self, policy: AdminPolicy, direction: Direction, ref: PolicyRef) -> PolicyRules:
        rules = tuple(
            self._rule(RuleRef(ref, direction, index, rule.name), rule)
            for index, rule in enumerate(policy.rules(direction))
        )
        return PolicyRules(ref, self._subjects(policy.subject), rules)

    def _selected(self, namespaces: LabelSelector | None, pods: PodsSelector | None) -> frozenset[EndpointId]:
        if namespaces is not None:
            return self._pods(self._namespaces(namespaces), None)
        assert pods is not None
        return self._pods(self._namespaces(pods.namespace_selector), pods.pod_selector)

    def _subjects(self, subject: AdminSubject) -> frozenset[EndpointId]:
        return self._selected(subject.namespaces, subject.pods)

    def _rule(self, ref: RuleRef, rule: AdminRule) -> Rule:
        action = ACTIONS[rule.action]
        if any(peer.unknown for peer in rule.peers):
            # A peer of a newer API: the rule fails closed, as in Calico. An Allow rule matches
            # nothing (its known peers with it); a Deny or Pass rule denies everything for the
            # subject, whatever its ports.
            if action is Action.ALLOW:
                return Rule(ref, Action.ALLOW, (), None)
            return Rule(ref, Action.DENY, None, None)
        peers = tuple(self._peer(i, peer) for i, peer in enumerate(rule.peers))
        ports = None
        if rule.ports is not None:
            ports = tuple(
                PortMatch(i, None, name=p.name) if p.name is not None else PortMatch(i, p.protocol, p.start, p.end)
                for i, p in enumerate(rule.ports)
            )
        return Rule(ref, action, peers, ports)

    def _peer(self, index: int, peer: AdminPeer) -> PeerMatch:
        if peer.namespaces is not None or peer.pods is not None:
            return PeerMatch(index, endpoints=self._selected(peer.namespaces, peer.pods))
        if peer.networks:
            # Networks match addresses, pod addresses included.
            return PeerMatch(index, blocks=tuple(CidrBlock(n) for n in peer.networks))
        if peer.nodes is not None:
            selector = peer.nodes
            blocks = tuple(
                CidrBlock.of(address)
                for node in self.inventory.nodes
                if selector.matches(node.labels)
                for address in node.addresses
            )
            return PeerMatch(index, blocks=blocks)
        # domainNames: names cannot be decided from an inventory; they match no address here.
        return PeerMatch(index)
