"""Wire model of netfence's own kind: netfence.dev/v1alpha1 ExternalWorkload.

A host outside the cluster (a VM, a bare-metal server) that policies can select by its labels:

    apiVersion: netfence.dev/v1alpha1
    kind: ExternalWorkload
    metadata: {name: haproxy, labels: {app: haproxy}}
    spec:
      addresses: [172.18.221.1]
      ports: [{name: http, port: 80, protocol: TCP}]

Cluster-scoped (a namespace in metadata is ignored, as for other cluster-scoped kinds). The spec
forbids unknown fields, so a typo such as `adresses` is an error. The name is a DNS-1123
subdomain, as any Kubernetes object's; labels are checked as the API server checks labels.
An address is a host's own unicast address: not unspecified, loopback, multicast or the IPv4
broadcast address, and an IPv4 address is written as such (not as ::ffff:10.0.0.1, which the
dataplane would match as another address). Link-local addresses are allowed (a cloud's
metadata server, 169.254.169.254, is such a host).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from netfence.errors import show
from netfence.sources.schema.checks import IPText, PortNumber, Problem, Protocol, fail, is_port_name, raise_all
from netfence.sources.schema.kubernetes import Strict, SubdomainMeta


def _port_name(value: Any) -> str:
    if not is_port_name(value):
        raise fail(f"expected a port name (IANA service name), got {show(value)}")
    return str(value)


PortName = Annotated[Any, AfterValidator(_port_name)]


def _not_a_host(address: IPv4Address | IPv6Address) -> str | None:
    """Why `address` cannot be a host's own address, or None."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return f"an IPv4-mapped IPv6 address: write {address.ipv4_mapped}"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address == IPv4Address("255.255.255.255"):
        return "broadcast"
    return None


class WorkloadPort(Strict):
    name: PortName | None = None
    port: PortNumber
    protocol: Protocol = "TCP"


class ExternalWorkloadSpec(Strict):
    addresses: list[IPText]
    ports: list[WorkloadPort] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExternalWorkloadSpec:
        raise_all("ExternalWorkloadSpec", self.problems())
        return self

    def problems(self) -> list[Problem]:
        """(field path inside spec, message) for every problem that spans entries."""
        found: list[Problem] = []
        if not self.addresses:
            found.append(("addresses", "expected at least one IPv4 or IPv6 address, got []"))
        seen: dict[object, int] = {}
        for i, text in enumerate(self.addresses):
            address = ip_address(text)
            why = _not_a_host(address)
            if why is not None:
                found.append((f"addresses[{i}]", f"expected a host's unicast address, got {show(text)} ({why})"))
            elif address in seen:
                message = f"address {address} is listed twice (first at addresses[{seen[address]}])"
                found.append((f"addresses[{i}]", message))
            else:
                seen[address] = i
        names: dict[str, int] = {}
        numbers: dict[tuple[int, str], int] = {}
        for i, port in enumerate(self.ports or ()):
            if port.name is not None:
                if port.name in names:
                    message = f"port name {port.name} is listed twice (first at ports[{names[port.name]}])"
                    found.append((f"ports[{i}].name", message))
                else:
                    names[port.name] = i
            key = (port.port, port.protocol)
            if key in numbers:
                message = f"port {port.port}/{port.protocol} is listed twice (first at ports[{numbers[key]}])"
                found.append((f"ports[{i}]", message))
            else:
                numbers[key] = i
        return found


class ExternalWorkload(Strict):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: SubdomainMeta
    spec: ExternalWorkloadSpec
