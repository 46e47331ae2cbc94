"""What Calico selectors range over: pods, host endpoints and network sets, with the labels
Calico gives them (their own plus the namespace, service-account and orchestrator labels)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netfence.ir.types import AddressGroup, CidrBlock
from netfence.model.calico_selector import Selector
from netfence.model.endpoints import EndpointId, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels

NAMESPACE = "projectcalico.org/namespace"
ORCHESTRATOR = "projectcalico.org/orchestrator"
SERVICE_ACCOUNT = "projectcalico.org/serviceaccount"
NAME = "projectcalico.org/name"
NAMESPACE_PREFIX = "pcns."
ACCOUNT_PREFIX = "pcsa."


def host_endpoint_id(name: str) -> EndpointId:
    return EndpointId(f"hep/{name}")


@dataclass(frozen=True, slots=True)
class Member:
    """Something a Calico selector can pick: an endpoint (by id) or a network set (by nets)."""

    endpoint: EndpointId | None
    blocks: tuple[CidrBlock, ...]
    labels: Labels
    #: None for cluster-wide things: GlobalNetworkSets and HostEndpoints.
    namespace: str | None
    #: The namespace's labels plus projectcalico.org/name (namespaced members only).
    namespace_labels: Labels | None = None
    service_account: str | None = None
    #: The service account's labels plus projectcalico.org/name (pods only).
    account_labels: Labels | None = None
    is_pod: bool = False


class Scope:
    def __init__(self, inventory: Inventory, pods: Iterable[Pod]) -> None:
        self.inventory = inventory
        namespace_labels: dict[str, Labels] = {}
        # Equal label sets share one object, so cache lookups find them by identity.
        interned: dict[Labels, Labels] = {}

        def intern(labels: Labels) -> Labels:
            return interned.setdefault(labels, labels)

        def ns_labels(name: str) -> Labels:
            found = namespace_labels.get(name)
            if found is None:
                found = namespace_labels[name] = intern(Labels({**inventory.namespace(name).labels, NAME: name}))
            return found

        members: list[Member] = []
        for pod in pods:
            account = inventory.service_account(pod.namespace, pod.service_account)
            account_labels = intern(Labels({**account.labels, NAME: account.name}))
            nsl = ns_labels(pod.namespace)
            labels = {
                **pod.labels,
                NAMESPACE: pod.namespace,
                ORCHESTRATOR: "k8s",
                SERVICE_ACCOUNT: pod.service_account,
                **{NAMESPACE_PREFIX + k: v for k, v in nsl.items()},
                **{ACCOUNT_PREFIX + k: v for k, v in account_labels.items()},
            }
            members.append(
                Member(pod.id, (), intern(Labels(labels)), pod.namespace, nsl, pod.service_account, account_labels, True)
            )
        for hep in inventory.host_endpoints:
            members.append(Member(host_endpoint_id(hep.name), (), hep.labels, None))
        for network_set in inventory.network_sets:
            blocks = tuple(CidrBlock(net) for net in network_set.nets)
            if network_set.namespace is None:
                members.append(Member(None, blocks, network_set.labels, None))
                continue
            nsl = ns_labels(network_set.namespace)
            labels = {
                **network_set.labels,
                NAMESPACE: network_set.namespace,
                **{NAMESPACE_PREFIX + k: v for k, v in nsl.items()},
            }
            members.append(Member(None, blocks, intern(Labels(labels)), network_set.namespace, nsl))
        self.members = tuple(members)
        self.by_namespace: dict[str | None, list[Member]] = {}
        for member in self.members:
            self.by_namespace.setdefault(member.namespace, []).append(member)
        self._ns_labels = ns_labels
        self._cache: dict[tuple[int, Labels, bool, bool], bool] = {}
        self._keep: dict[int, Selector] = {}

    def namespace_labels(self, name: str) -> Labels:
        return self._ns_labels(name)

    def matches(self, selector: Selector, labels: Labels, all_: bool = True, global_: bool = True) -> bool:
        key = (id(selector), labels, all_, global_)
        hit = self._cache.get(key)
        if hit is None:
            self._keep[id(selector)] = selector  # keeps the id unique while it is a cache key
            hit = self._cache[key] = selector.matches(labels, all_=all_, global_=global_)
        return hit

    def in_namespaces(self, selector: Selector) -> Callable[[str | None], bool]:
        """A rule namespaceSelector, per namespace (None: cluster-wide members): `all()` means
        every namespaced member, `global()` only cluster-wide ones (GlobalNetworkSets,
        HostEndpoints)."""

        def test(namespace: str | None) -> bool:
            if namespace is None:
                return self.matches(selector, Labels(), all_=False, global_=True)
            return self.matches(selector, self.namespace_labels(namespace), all_=True, global_=False)

        return test

    def select(
        self, test: Callable[[Member], bool], namespaces: Callable[[str | None], bool] | None = None
    ) -> AddressGroup:
        """The addresses of the members passing `test`, looking only into the namespaces that
        pass `namespaces` (None: all)."""
        endpoints: set[EndpointId] = set()
        blocks: list[CidrBlock] = []
        for namespace, members in self.by_namespace.items():
            if namespaces is not None and not namespaces(namespace):
                continue
            for member in members:
                if test(member):
                    if member.endpoint is not None:
                        endpoints.add(member.endpoint)
                    blocks.extend(member.blocks)
        return AddressGroup(frozenset(endpoints), tuple(blocks))
