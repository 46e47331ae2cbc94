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
    DNS_LABEL,
    DNS_SUBDOMAIN,
    CIDRText,
    DefaultedProtocol,
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
    Problem,
    Protocol,
    fail,
    ip_family,
    is_dns_label,
    is_dns_subdomain,
    is_ip,
    is_port_name,
    is_port_number,
    not_one_per_family,
    parse_ip,
    raise_all,
    special_ip,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def addresses_text(texts: list[str]) -> str:
    return "[" + ", ".join(show(t) for t in texts) + "]"


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
    protocol: DefaultedProtocol = "TCP"
    name: PortName | None = None


class Container(Lenient):
    name: DNSLabelName
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

    @model_validator(mode="after")
    def _unique_container_names(self) -> PodSpec:
        # The API server: container names are unique across containers and initContainers.
        first: dict[str, str] = {}
        problems: list[Problem] = []
        for field, containers in (("containers", self.containers), ("initContainers", self.init_containers or ())):
            for i, container in enumerate(containers):
                if container.name in first:
                    message = f"container name {show(container.name)} is already used by {first[container.name]}"
                    problems.append((f"{field}[{i}].name", message))
                else:
                    first[container.name] = f"{field}[{i}]"
        raise_all("PodSpec", problems)
        return self


def _optional_ip(value: Any) -> str | None:
    # An empty address is no address (a pending pod's podIP), as the API server reads it.
    if value in ("", None):
        return None
    if not is_ip(value):
        raise fail(f"expected an IPv4 or IPv6 address, got {show(value)}")
    return str(value)


OptionalIP = Annotated[Any, AfterValidator(_optional_ip)]


class PodIP(Lenient):
    ip: IPText


class PodStatus(Lenient):
    """The addresses as the API server keeps them: podIPs holds at most one address per IP
    family, each once, and starts with podIP. (Reading a v1 object whose podIPs[0] differs from
    podIP, the API server keeps podIP and drops podIPs; such a pair never comes out of a cluster,
    and written by hand it is ambiguous, so it is an error here.)"""

    phase: str | None = None
    pod_ip: OptionalIP = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")

    @model_validator(mode="after")
    def _addresses(self) -> PodStatus:
        raise_all("PodStatus", self.problems())
        return self

    def problems(self) -> list[Problem]:
        texts = [entry.ip for entry in self.pod_ips or ()]
        found: list[Problem] = []
        seen: dict[object, int] = {}
        for i, text in enumerate(texts):
            address = parse_ip(text)
            if address in seen:
                found.append((f"podIPs[{i}].ip", f"address {text} is listed twice (first at podIPs[{seen[address]}])"))
            else:
                seen[address] = i
        if not_one_per_family(texts) and (len(texts) > 2 or not found):
            found.append(("podIPs", f"expected at most one address per IP family (at most 2), got {addresses_text(texts)}"))
        if self.pod_ip is not None and texts and parse_ip(texts[0]) != parse_ip(self.pod_ip):
            message = f"expected podIP {self.pod_ip} as the first address (podIPs[0] must equal podIP), got {show(texts[0])}"
            found.append(("podIPs[0].ip", message))
        return found


class Pod(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


def _external_traffic_policy(value: Any) -> str | None:
    if value in ("", None):  # unset; the API server defaults it for services reachable from outside
        return None
    if value not in ("Cluster", "Local"):
        raise fail(f"expected Cluster or Local, got {show(value)}")
    return str(value)


ExternalTrafficPolicy = Annotated[Any, AfterValidator(_external_traffic_policy)]

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
#: The kubelet's port: the API server refuses it as a port of a LoadBalancer service.
KUBELET_PORT = 10250


def _service_type(value: Any) -> str:
    if value in ("", None):  # defaulted, as an absent type
        return "ClusterIP"
    if value not in SERVICE_TYPES:
        raise fail(f"expected ClusterIP, NodePort, LoadBalancer or ExternalName, got {show(value)}")
    return str(value)


def _service_port_name(value: Any) -> str | None:
    # A Service port name is a DNS-1123 label (not an IANA service name: 'web-frontend-http' of
    # 17 characters is fine); "" is no name.
    if value in ("", None):
        return None
    if not is_dns_label(value):
        raise fail(f"expected {DNS_LABEL}, got {show(value)}")
    return str(value)


def _target_port(value: Any) -> int | str | None:
    # 0 and "" are unset, as an absent targetPort: the API server sets them to `port`.
    if value is None or value == "" or (type(value) is int and value == 0):
        return None
    if not (is_port_number(value) or is_port_name(value)):
        raise fail(f"expected a port number 1-65535 or a port name (IANA service name), got {show(value)}")
    return value  # type: ignore[no-any-return]


def _node_port(value: Any) -> int | None:
    # 0 is unset (the API server allocates one). Any port 1-65535 is accepted: the range node
    # ports are allocated from is the API server's --service-node-port-range, 30000-32767 by
    # default but configurable, so a port outside it is valid on some clusters.
    if value is None or (type(value) is int and value == 0):
        return None
    if not is_port_number(value):
        raise fail(f"expected a port number 1-65535, got {show(value)}")
    return int(value)


ServiceType = Annotated[Any, AfterValidator(_service_type)]
ServicePortName = Annotated[Any, AfterValidator(_service_port_name)]
TargetPort = Annotated[Any, AfterValidator(_target_port)]
NodePort = Annotated[Any, AfterValidator(_node_port)]


class ServicePort(Lenient):
    port: PortNumber
    protocol: DefaultedProtocol = "TCP"
    name: ServicePortName = None
    target_port: TargetPort = Field(default=None, alias="targetPort")
    node_port: NodePort = Field(default=None, alias="nodePort")


class ServiceSpec(Lenient):
    """The spec as ValidateService checks it. Problems that span fields are reported together,
    once every field is valid on its own."""

    selector: LabelMap | None = None
    ports: list[ServicePort] | None = None
    # "None" marks a headless service.
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: ServiceType = "ClusterIP"
    external_name: str | None = Field(default=None, alias="externalName")
    ip_families: list[Any] | None = Field(default=None, alias="ipFamilies")
    ip_family_policy: Any = Field(default=None, alias="ipFamilyPolicy")
    external_ips: list[IPText] | None = Field(default=None, alias="externalIPs")
    external_traffic_policy: ExternalTrafficPolicy = Field(default=None, alias="externalTrafficPolicy")

    @property
    def addresses(self) -> list[str]:
        """clusterIPs, or [clusterIP] when only that is set (the API server fills clusterIPs so)."""
        if self.cluster_ips:
            return self.cluster_ips
        return [self.cluster_ip] if self.cluster_ip else []

    @property
    def headless(self) -> bool:
        return self.addresses[:1] == ["None"]

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSpec:
        raise_all("ServiceSpec", self.problems())
        return self

    def problems(self) -> list[Problem]:
        found = self._type_problems()
        if self.type != "ExternalName":
            found += self._cluster_ip_problems()
            found += self._family_problems()
        found += self._port_problems()
        for i, text in enumerate(self.external_ips or ()):
            why = special_ip(text)
            if why is not None:
                found.append((f"externalIPs[{i}]", f"expected {why}, got {show(text)}"))
        reachable = self.type in ("NodePort", "LoadBalancer") or bool(self.external_ips)
        if self.external_traffic_policy is not None and not reachable:
            message = (
                "expected no externalTrafficPolicy: only services reachable from outside (type NodePort or "
                f"LoadBalancer, or with externalIPs) have one, got {show(self.external_traffic_policy)}"
            )
            found.append(("externalTrafficPolicy", message))
        return found

    def _type_problems(self) -> list[Problem]:
        found: list[Problem] = []
        written = "clusterIPs" if self.cluster_ips else "clusterIP"
        if self.type == "ExternalName":
            if self.addresses:
                got = addresses_text(self.addresses) if self.cluster_ips else show(self.cluster_ip)
                found.append((written, f"expected no cluster IP for type ExternalName, got {got}"))
            if self.ip_families:
                found.append(("ipFamilies", f"expected no ipFamilies for type ExternalName, got {addresses_text(self.ip_families)}"))
            if self.ip_family_policy is not None:
                found.append(("ipFamilyPolicy", f"expected no ipFamilyPolicy for type ExternalName, got {show(self.ip_family_policy)}"))
            name = (self.external_name or "").removesuffix(".")
            if not name:
                found.append(("externalName", "required for type ExternalName"))
            elif not is_dns_subdomain(name):
                found.append(("externalName", f"expected {DNS_SUBDOMAIN}, got {show(self.external_name)}"))
        elif self.type in ("NodePort", "LoadBalancer") and self.headless:
            found.append((written, f"expected a cluster IP, not None (headless), for type {self.type}"))
        if not self.ports and not self.headless and self.type != "ExternalName":
            found.append(("ports", "expected at least one port (only headless and ExternalName services have none)"))
        return found

    def _cluster_ip_problems(self) -> list[Problem]:
        """clusterIP and clusterIPs, as ValidateServiceClusterIPsRelatedFields checks them."""
        found: list[Problem] = []
        if self.cluster_ip not in (None, "", "None") and not is_ip(self.cluster_ip):
            found.append(("clusterIP", f"expected an IPv4 or IPv6 address or None, got {show(self.cluster_ip)}"))
        texts = self.cluster_ips or []
        if not texts:
            return found
        if not self.cluster_ip:
            found.append(("clusterIPs", f"expected no clusterIPs when clusterIP is not set, got {addresses_text(texts)}"))
        elif texts[0] != self.cluster_ip:
            message = (
                f"expected clusterIP {show(self.cluster_ip)} as the first address "
                f"(clusterIPs[0] must equal clusterIP), got {show(texts[0])}"
            )
            found.append(("clusterIPs[0]", message))
        valid = True
        for i, text in enumerate(texts):
            if i == 0 and text == "None":
                if len(texts) > 1:
                    valid = False
                    found.append(("clusterIPs", f"expected None as the only value, got {addresses_text(texts)}"))
            elif not is_ip(text):
                valid = False
                expected = "an IPv4 or IPv6 address or None" if i == 0 else "an IPv4 or IPv6 address"
                found.append((f"clusterIPs[{i}]", f"expected {expected}, got {show(text)}"))
        if len(texts) > 2:
            found.append(("clusterIPs", f"expected at most 2 addresses (one per IP family), got {addresses_text(texts)}"))
        elif valid and len(texts) == 2 and ip_family(texts[0]) == ip_family(texts[1]):
            found.append(("clusterIPs", f"expected at most one address per IP family, got {addresses_text(texts)}"))
        return found

    def _family_problems(self) -> list[Problem]:
        """ipFamilies and ipFamilyPolicy, alone and against the cluster IPs."""
        found: list[Problem] = []
        families = self.ip_families or []
        seen: dict[str, int] = {}
        for i, family in enumerate(families):
            if family not in IP_FAMILIES:
                found.append((f"ipFamilies[{i}]", f"expected IPv4 or IPv6, got {show(family)}"))
            elif family in seen:
                found.append((f"ipFamilies[{i}]", f"{family} is listed twice (first at ipFamilies[{seen[family]}])"))
            else:
                seen[family] = i
        policy = self.ip_family_policy
        if policy is not None and policy not in IP_FAMILY_POLICIES:
            found.append(("ipFamilyPolicy", f"expected SingleStack, PreferDualStack or RequireDualStack, got {show(policy)}"))
        addresses = self.addresses
        if self.headless or not all(is_ip(text) for text in addresses):
            return found
        if policy == "SingleStack":
            for field, count in (("clusterIPs", len(addresses)), ("ipFamilies", len(families))):
                if count > 1:
                    message = f"expected PreferDualStack or RequireDualStack with {count} {field}, got 'SingleStack'"
                    found.append(("ipFamilyPolicy", message))
        for i, (text, family) in enumerate(zip(addresses, families)):
            if family in IP_FAMILIES and f"IPv{ip_family(text)}" != family:
                field = f"clusterIPs[{i}]" if self.cluster_ips else "clusterIP"
                found.append((field, f"expected an {family} address (ipFamilies[{i}]), got {show(text)}"))
        return found

    def _port_problems(self) -> list[Problem]:
        found: list[Problem] = []
        ports = self.ports or []
        names: dict[str, int] = {}
        numbers: dict[tuple[int, str], int] = {}
        node_ports: dict[tuple[int, str], int] = {}
        for i, port in enumerate(ports):
            if port.name is None:
                if len(ports) > 1:
                    found.append((f"ports[{i}].name", "required when a Service has more than one port"))
            elif port.name in names:
                found.append((f"ports[{i}].name", f"port name {show(port.name)} is already used by ports[{names[port.name]}]"))
            else:
                names[port.name] = i
            key = (port.port, port.protocol)
            if key in numbers:
                found.append((f"ports[{i}]", f"port {port.port}/{port.protocol} is already used by ports[{numbers[key]}]"))
            else:
                numbers[key] = i
            if self.type == "LoadBalancer" and port.port == KUBELET_PORT:
                message = f"expected a port other than {KUBELET_PORT} (the kubelet's) for type LoadBalancer, got {port.port}"
                found.append((f"ports[{i}].port", message))
            if port.node_port is None:
                continue
            if self.type == "ClusterIP":
                found.append((f"ports[{i}].nodePort", f"expected no nodePort for type ClusterIP, got {port.node_port}"))
            key = (port.node_port, port.protocol)
            if key in node_ports:
                message = f"node port {port.node_port}/{port.protocol} is already used by ports[{node_ports[key]}]"
                found.append((f"ports[{i}].nodePort", message))
            else:
                node_ports[key] = i
        return found


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
    # Validated when absent too: a Service without spec lacks its ports.
    spec: ServiceSpec = Field(default={}, validate_default=True)
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
        # The API server refuses an address listed twice with the same type; netfence also
        # needs the addresses it matches (InternalIP, ExternalIP) to be addresses.
        problems: list[Problem] = []
        seen: dict[tuple[str, str], int] = {}
        for i, entry in enumerate(self.addresses or ()):
            if entry.type in NODE_ADDRESS_TYPES and not is_ip(entry.address):
                message = f"expected an IPv4 or IPv6 address, got {show(entry.address)}"
                problems.append((f"addresses[{i}].address", message))
            key = (entry.type, entry.address)
            if key in seen:
                message = f"{entry.type} {entry.address} is listed twice (first at addresses[{seen[key]}])"
                problems.append((f"addresses[{i}]", message))
            else:
                seen[key] = i
        raise_all("NodeStatus", problems)
        return self


class Node(Lenient):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    status: NodeStatus = NodeStatus()
