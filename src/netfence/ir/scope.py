"""What Calico selectors range over: pods, host endpoints, external workloads and network sets,
with the labels Calico gives them (their own plus the namespace, service-account and orchestrator
labels) and, for selectors that read them, netfence's well-known derived labels (metadata.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netfence.ir import metadata
from netfence.ir.types import AddressGroup, CidrBlock
from netfence.model.calico_selector import Selector
from netfence.model.endpoints import EndpointId, IPAddress, Pod
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
    #: None for cluster-wide things: GlobalNetworkSets, HostEndpoints and ExternalWorkloads.
    namespace: str | None
    #: The namespace's labels plus projectcalico.org/name (namespaced members only).
    namespace_labels: Labels | None = None
    service_account: str | None = None
    #: The service account's labels plus projectcalico.org/name (pods only).
    account_labels: Labels | None = None
    is_pod: bool = False
    #: For netfence's derived labels: kind (pod, host-endpoint, external, network-set), object
    #: name, node and addresses.
    kind: str = ""
    name: str = ""
    node: str | None = None
    addresses: tuple[IPAddress, ...] = ()


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
                Member(
                    pod.id,
                    (),
                    intern(Labels(labels)),
                    pod.namespace,
                    nsl,
                    pod.service_account,
                    account_labels,
                    True,
                    "pod",
                    pod.name,
                    pod.node,
                    pod.ips,
                )
            )
        for hep in inventory.host_endpoints:
            members.append(
                Member(
                    host_endpoint_id(hep.name),
                    (),
                    hep.labels,
                    None,
                    kind="host-endpoint",
                    name=hep.name,
                    node=hep.node,
                    addresses=hep.expected_ips,
                )
            )
        for workload in inventory.external_workloads:
            # Cluster-wide like a HostEndpoint: namespaced selectors reach it through global().
            members.append(
                Member(
                    workload.id,
                    (),
                    workload.labels,
                    None,
                    kind="external",
                    name=workload.name,
                    addresses=workload.addresses,
                )
            )
        for network_set in inventory.network_sets:
            blocks = tuple(CidrBlock(net) for net in network_set.nets)
            if network_set.namespace is None:
                labelled = network_set.labels
                members.append(Member(None, blocks, labelled, None, kind="network-set", name=network_set.name))
                continue
            nsl = ns_labels(network_set.namespace)
            labels = {
                **network_set.labels,
                NAMESPACE: network_set.namespace,
                **{NAMESPACE_PREFIX + k: v for k, v in nsl.items()},
            }
            labelled, where = intern(Labels(labels)), network_set.namespace
            members.append(Member(None, blocks, labelled, where, nsl, kind="network-set", name=network_set.name))
        self.members = tuple(members)
        self.by_namespace: dict[str | None, list[Member]] = {}
        for member in self.members:
            self.by_namespace.setdefault(member.namespace, []).append(member)
        self._ns_labels = ns_labels
        self._cache: dict[tuple[int, Labels, bool, bool], bool] = {}
        self._keep: dict[int, Selector] = {}
        self._reads_derived: dict[int, bool] = {}
        #: id(member) -> its labels with the derived ones, once per address; made on first use.
        self._variants: dict[int, tuple[Labels, ...]] | None = None

    def namespace_labels(self, name: str) -> Labels:
        return self._ns_labels(name)

    def matches(self, selector: Selector, labels: Labels, all_: bool = True, global_: bool = True) -> bool:
        key = (id(selector), labels, all_, global_)
        hit = self._cache.get(key)
        if hit is None:
            self._keep[id(selector)] = selector  # keeps the id unique while it is a cache key
            hit = self._cache[key] = selector.matches(labels, all_=all_, global_=global_)
        return hit

    def member_matches(self, selector: Selector, member: Member, all_: bool = True) -> bool:
        """`selector` against a member's labels; with its derived labels too when the selector
        reads a netfence.dev/ key (then one address at a time: any may match)."""
        reads = self._reads_derived.get(id(selector))
        if reads is None:
            self._keep[id(selector)] = selector
            reads = self._reads_derived[id(selector)] = metadata.uses_derived(selector)
        if not reads:
            return self.matches(selector, member.labels, all_=all_)
        return any(selector.matches(labels, all_=all_) for labels in self.selectable_labels(member))

    def selectable_labels(self, member: Member) -> tuple[Labels, ...]:
        """Everything a selector sees on `member`: its labels (Calico's derived ones included)
        and netfence's derived labels, once per address."""
        return self._member_variants()[id(member)]

    def _member_variants(self) -> dict[int, tuple[Labels, ...]]:
        if self._variants is None:
            services = metadata.backed_services(self.inventory)
            self._variants = {}
            for member in self.members:
                backed = services.get(member.endpoint, ()) if member.is_pod and member.endpoint is not None else ()
                derived = metadata.derived(member.kind, member.name, member.namespace, member.node, backed)
                self._variants[id(member)] = metadata.variants({**member.labels, **derived}, member.addresses)
        return self._variants

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
