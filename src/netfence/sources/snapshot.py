"""Snapshot: what a watched source (the Kubernetes API, a directory) holds at one moment."""

from __future__ import annotations

from dataclasses import dataclass, field

from netfence.errors import InputError
from netfence.sources.documents import Document


@dataclass(frozen=True)
class Snapshot:
    """Loader documents, ready for `build_inventory`."""

    documents: list[Document]
    #: Problems met while reading (a file that does not parse), reported with the others.
    problems: list[InputError] = field(default_factory=list)
    #: The order problems are reported in (file names; empty for API objects).
    order: list[str] = field(default_factory=list)
