"""Wire model of netfence's own kind: netfence.dev/v1alpha1 ExternalWorkload.

A host outside the cluster (a VM, a bare-metal server) that policies can select by its labels:

    apiVersion: netfence.dev/v1alpha1
    kind: ExternalWorkload
    metadata: {name: haproxy, labels: {app: haproxy}}
    spec:
      addresses: [172.18.221.1]
      ports: [{name: http, port: 80, protocol: TCP}]

Cluster-scoped (a namespace in metadata is ignored, as for other cluster-scoped kinds). The spec
forbids unknown fields, so a typo such as `adresses` is an error.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from netfence.errors import show
from netfence.sources.schema.checks import IPText, PortNumber, Protocol, fail, is_port_name
from netfence.sources.schema.kubernetes import ObjectMeta, Strict


def _port_name(value: Any) -> str:
    if not is_port_name(value):
        raise fail(f"expected a port name (IANA service name), got {show(value)}")
    return str(value)


PortName = Annotated[Any, AfterValidator(_port_name)]


class WorkloadPort(Strict):
    name: PortName | None = None
    port: PortNumber
    protocol: Protocol = "TCP"


class ExternalWorkloadSpec(Strict):
    addresses: list[IPText]
    ports: list[WorkloadPort] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExternalWorkloadSpec:
        problems = self.problems()
        if problems:
            details = [InitErrorDetails(type=fail(message, field), loc=(), input=None) for field, message in problems]
            raise ValidationError.from_exception_data("ExternalWorkloadSpec", details)
        return self

    def problems(self) -> list[tuple[str, str]]:
        """(field path inside spec, message) for every problem that spans entries."""
        found: list[tuple[str, str]] = []
        if not self.addresses:
            found.append(("addresses", "expected at least one IPv4 or IPv6 address, got []"))
        seen: dict[object, int] = {}
        for i, text in enumerate(self.addresses):
            address = ip_address(text)
            if address in seen:
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
    metadata: ObjectMeta
    spec: ExternalWorkloadSpec
