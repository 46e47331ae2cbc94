"""netfence's own kinds (netfence.dev/v1alpha1) -> model."""

from __future__ import annotations

from ipaddress import ip_address

from netfence.model.endpoints import ExternalWorkload, WorkloadPort
from netfence.model.labels import Labels
from netfence.model.ports import Protocol
from netfence.sources.convert import Checker
from netfence.sources.schema import external as wire


def convert_external_workload(check: Checker, obj: wire.ExternalWorkload) -> ExternalWorkload:
    return ExternalWorkload(
        name=obj.metadata.name,
        labels=Labels(obj.metadata.labels),
        addresses=tuple(ip_address(text) for text in obj.spec.addresses),
        ports=tuple(WorkloadPort(p.port, Protocol(p.protocol), p.name) for p in obj.spec.ports or ()),
        location=check.doc.location(),
    )
