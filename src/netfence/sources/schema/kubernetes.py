"""Wire models of the Kubernetes kinds netfence reads (core/v1 and networking.k8s.io/v1).

Policy objects forbid unknown fields, so a typo such as `podSelecter` is an error. Pods,
Services, Namespaces, ServiceAccounts and Nodes carry many fields netfence has no use for (a
`kubectl get -o yaml` dump), so their models ignore what they do not name. Every value the API server would reject
is rejected here, with the field path, in the same validation pass.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from netfence.errors import show

from netfence.sources.schema.checks import (
    CIDRText,
    DNS1035Name,
    DNSLabelName,
    DNSSubdomainName,
    IPText,
    LabelKey,
    LabelMap,
    LabelValue,
    NamespaceName,
    PolicyType,
    PortName,
    PortNumber,
    PortOrName,
    Protocol,
    fail,
    is_ip,
    is_port_number,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ObjectMeta(Lenient):
    """metadata as every kind has it; the subclasses below check `name` the way the API server
    checks it for their kinds (names, namespaces and labels end up in messages, Calico's derived
    labels and the lab, so none may be what the API server would refuse)."""

    name: str
    namespace: NamespaceName | None = None
    labels: LabelMap | None = None


class SubdomainMeta(ObjectMeta):
    """Most kinds: Pod, NetworkPolicy, ServiceAccount, Node, Calico sets and host endpoints, ANPs."""

    name: DNSSubdomainName


class NamespaceMeta(ObjectMeta):
    name: DNSLabelName


class ServiceMeta(ObjectMeta):
    name: DNS1035Name


def _policy_types(value: list[str]) -> list[str]:
    if len(value) > 2:
        raise fail(f"expected at most 2 policy types (Ingress, Egress), got {len(value)}")
    return value


class LabelSelectorRequirement(Strict):
    key: LabelKey
    operator: str
    values: list[LabelValue] | None = None

    @model_validator(mode="after")
    def _operator_and_values(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn"):
            if not self.values:
                raise fail(f"operator {self.operator} needs at least one value", "values")
        elif self.operator in ("Exists", "DoesNotExist"):
            if self.values:
                raise fail(f"operator {self.operator} takes no values", "values")
        else:
            raise fail(f"expected In, NotIn, Exists or DoesNotExist, got {show(self.operator)}", "operator")
        return self


class LabelSelector(Strict):
    match_labels: LabelMap | None = Field(default=None, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, alias="matchExpressions")


class IPBlock(Strict):
    cidr: CIDRText
    except_: list[CIDRText] | None = Field(default=None, alias="except")

    @model_validator(mode="after")
    def _excepts_inside(self) -> IPBlock:
        cidr = ip_network(self.cidr, strict=False)
        for i, text in enumerate(self.except_ or ()):
            net = ip_network(text, strict=False)
            if net.version != cidr.version or not net.subnet_of(cidr) or net == cidr:  # type: ignore[arg-type]
                raise fail(f"expected a CIDR strictly inside {cidr}, got {text!r}", f"except[{i}]")
        return self


class NetworkPolicyPeer(Strict):
    pod_selector: LabelSelector | None = Field(default=None, alias="podSelector")
    namespace_selector: LabelSelector | None = Field(default=None, alias="namespaceSelector")
    ip_block: IPBlock | None = Field(default=None, alias="ipBlock")

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPolicyPeer:
        selectors = self.pod_selector is not None or self.namespace_selector is not None
        if self.ip_block is not None and selectors:
            raise fail("a peer is either an ipBlock or pod/namespace selectors, not both")
        if self.ip_block is None and not selectors:
            raise fail("a peer needs podSelector, namespaceSelector or ipBlock")
        return self


class NetworkPolicyPort(Strict):
    protocol: Protocol = "TCP"
    port: PortOrName | None = None
    end_port: PortNumber | None = Field(default=None, alias="endPort")

    @model_validator(mode="after")
    def _end_port(self) -> NetworkPolicyPort:
        if self.end_port is not None:
            if not is_port_number(self.port):
                raise fail("endPort needs a numeric port", "endPort")
            if self.end_port < self.port:
                raise fail(f"expected a port number not below port {self.port}, got {self.end_port}", "endPort")
        return self


class NetworkPolicyIngressRule(Strict):
    from_: list[NetworkPolicyPeer] | None = Field(default=None, alias="from")
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicyEgressRule(Strict):
    to: list[NetworkPolicyPeer] | None = None
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicySpec(Strict):
    # Required by the API; a missing one decodes to the empty selector, which is what clients send.
    pod_selector: LabelSelector = Field(default=LabelSelector(), alias="podSelector")
    policy_types: Annotated[list[PolicyType], AfterValidator(_policy_types)] | None = Field(
        default=None, alias="policyTypes"
    )
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None


class NetworkPolicy(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: NetworkPolicySpec = NetworkPolicySpec()
    # Written by old API servers (1.24-1.27 had a status with conditions); not used.
    status: dict[str, Any] | None = None


class Namespace(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: NamespaceMeta


class ContainerPort(Lenient):
    container_port: PortNumber = Field(alias="containerPort")
    protocol: Protocol = "TCP"
    name: PortName | None = None


class Container(Lenient):
    name: str
    ports: list[ContainerPort] | None = None

    @model_validator(mode="after")
    def _unique_port_names(self) -> Container:
        # The API server: port names are unique within a container (policies resolve them).
        first: dict[str, int] = {}
        for i, port in enumerate(self.ports or ()):
            if port.name is not None:
                if port.name in first:
                    message = f"port name {show(port.name)} is already used by ports[{first[port.name]}]"
                    raise fail(message, f"ports[{i}].name")
                first[port.name] = i
        return self


class PodSpec(Lenient):
    node_name: DNSSubdomainName | None = Field(default=None, alias="nodeName")
    service_account_name: DNSSubdomainName | None = Field(default=None, alias="serviceAccountName")
    host_network: bool | None = Field(default=None, alias="hostNetwork")
    containers: list[Container] = []
    init_containers: list[Container] | None = Field(default=None, alias="initContainers")


class PodIP(Lenient):
    ip: IPText


class PodStatus(Lenient):
    phase: str | None = None
    pod_ip: IPText | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")


class Pod(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


def _external_traffic_policy(value: Any) -> str:
    if value not in ("Cluster", "Local"):
        raise fail(f"expected Cluster or Local, got {show(value)}")
    return str(value)


ExternalTrafficPolicy = Annotated[Any, AfterValidator(_external_traffic_policy)]


class ServicePort(Lenient):
    port: PortNumber
    protocol: Protocol = "TCP"
    name: DNSLabelName | None = None
    target_port: PortOrName | None = Field(default=None, alias="targetPort")
    node_port: int | None = Field(default=None, alias="nodePort")


class ServiceSpec(Lenient):
    selector: LabelMap | None = None
    ports: list[ServicePort] | None = None
    # "None" marks a headless service.
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str | None = None
    external_ips: list[IPText] | None = Field(default=None, alias="externalIPs")
    external_traffic_policy: ExternalTrafficPolicy | None = Field(default=None, alias="externalTrafficPolicy")

    @model_validator(mode="after")
    def _addresses(self) -> ServiceSpec:
        if self.cluster_ips is not None:
            texts = [(f"clusterIPs[{i}]", t) for i, t in enumerate(self.cluster_ips)]
        else:
            texts = [("clusterIP", self.cluster_ip)] if self.cluster_ip else []
        for field, text in texts:
            if text in ("None", ""):
                continue
            if not is_ip(text):
                raise fail(f"expected an IPv4 or IPv6 address or None, got {show(text)}", field)
        return self


class LoadBalancerIngress(Lenient):
    #: Some load balancers give a hostname instead; only addresses are used.
    ip: IPText | None = None


class LoadBalancerStatus(Lenient):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(Lenient):
    load_balancer: LoadBalancerStatus | None = Field(default=None, alias="loadBalancer")


class Service(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: ServiceMeta
    spec: ServiceSpec = ServiceSpec()
    status: ServiceStatus = ServiceStatus()


class ServiceAccount(Lenient):
    """Only identity and labels matter; secrets, imagePullSecrets and the like are ignored."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta


#: The address types a node peer matches (network-policy-api: the node's status.addresses).
NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")


class NodeAddress(Lenient):
    type: str
    address: str


class NodeStatus(Lenient):
    addresses: list[NodeAddress] | None = None

    @model_validator(mode="after")
    def _ip_addresses(self) -> NodeStatus:
        for i, entry in enumerate(self.addresses or ()):
            if entry.type in NODE_ADDRESS_TYPES and not is_ip(entry.address):
                message = f"expected an IPv4 or IPv6 address, got {show(entry.address)}"
                raise fail(message, f"addresses[{i}].address")
        return self


class Node(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    status: NodeStatus = NodeStatus()
