"""Findings and checks: what a lint check reports and how it is registered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from netfence.errors import Location

if TYPE_CHECKING:
    from netfence.analysis.lint.context import Context

#: A field inside an object, as its YAML path: ("spec", "ingress", 0, "from", 1).
FieldPath = tuple[str | int, ...]


class Severity(StrEnum):
    #: The policy cannot do what it says.
    ERROR = "error"
    #: Likely not what was meant, given the inventory.
    WARNING = "warning"
    #: Worth knowing; nothing to fix.
    INFO = "info"


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    #: `Kind namespace/name` (or `Kind name`) of the object at fault.
    object: str
    message: str
    hint: str
    #: Where the object starts.
    location: Location | None = None
    #: The field at fault inside the object (empty: the object itself); the command line turns
    #: it into the field's line when the object's text is at hand.
    field: FieldPath = ()

    @property
    def sort_key(self) -> tuple[str, int, str, str, str]:
        where = self.location
        return (where.file if where else "", (where.line or 0) if where else 0, self.code, self.object, self.message)


@dataclass(frozen=True)
class Check:
    """One check: a code, the severity of what it finds, a title for the documentation, and the
    function that finds it. `needs_pods`: it judges policies against the pods, so it is skipped
    when none are loaded."""

    code: str
    severity: Severity
    title: str
    run: Callable[[Context], Iterable[Finding]]
    needs_pods: bool = True

    def finding(
        self, obj: str, location: Location | None, message: str, hint: str, field: FieldPath = ()
    ) -> Finding:
        return Finding(self.code, self.severity, obj, message, hint, location, field)
