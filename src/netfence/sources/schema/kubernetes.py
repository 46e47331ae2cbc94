"""Wire models of the Kubernetes kinds netfence reads (core/v1 and networking.k8s.io/v1).

Policy objects forbid unknown fields, so a typo such as `podSelecter` is an error. Pods,
Services and Namespaces carry many fields netfence has no use for (a `kubectl get -o yaml`
dump), so their models ignore what they do not name. Int-or-string fields are typed `Any`
and checked in convert.py, where the message can say what a port may be.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ObjectMeta(Lenient):
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None


class LabelSelectorRequirement(Strict):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(Strict):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class IPBlock(Strict):
    cidr: str
    except_: list[str] | None = Field(default=None, alias="except")


class NetworkPolicyPeer(Strict):
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


class NetworkPolicyPort(Strict):
    protocol: str | None = None
    port: Any = None
    end_port: int | None = None


class NetworkPolicyIngressRule(Strict):
    from_: list[NetworkPolicyPeer] | None = Field(default=None, alias="from")
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicyEgressRule(Strict):
    to: list[NetworkPolicyPeer] | None = None
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicySpec(Strict):
    # Required by the API; a missing one decodes to the empty selector, which is what clients send.
    pod_selector: LabelSelector = LabelSelector()
    policy_types: list[str] | None = None
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None


class NetworkPolicy(Strict):
    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: NetworkPolicySpec = NetworkPolicySpec()
    # Written by old API servers (1.24-1.27 had a status with conditions); not used.
    status: dict[str, Any] | None = None


class Namespace(Lenient):
    api_version: str
    kind: str
    metadata: ObjectMeta


class ContainerPort(Lenient):
    container_port: int
    protocol: str | None = None
    name: str | None = None


class Container(Lenient):
    name: str
    ports: list[ContainerPort] | None = None


class PodSpec(Lenient):
    node_name: str | None = None
    service_account_name: str | None = None
    host_network: bool | None = None
    containers: list[Container] = []
    init_containers: list[Container] | None = None


class PodIP(Lenient):
    ip: str


class PodStatus(Lenient):
    phase: str | None = None
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")


class Pod(Lenient):
    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


class ServicePort(Lenient):
    port: int
    protocol: str | None = None
    name: str | None = None
    target_port: Any = None
    node_port: int | None = None


class ServiceSpec(Lenient):
    selector: dict[str, str] | None = None
    ports: list[ServicePort] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str | None = None


class Service(Lenient):
    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: ServiceSpec = ServiceSpec()
