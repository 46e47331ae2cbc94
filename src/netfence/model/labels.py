"""Labels and Kubernetes label selectors (matchLabels + matchExpressions)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Labels(Mapping[str, str]):
    """An immutable, hashable label map."""

    __slots__ = ("_hash", "_items", "_map")

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._map: dict[str, str] = dict(items or {})
        self._items = tuple(sorted(self._map.items()))
        self._hash = hash(self._items)  # label sets are dictionary keys in every selector cache

    def __getitem__(self, key: str) -> str:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._items == other._items
        return isinstance(other, Mapping) and self._map == dict(other)

    def __repr__(self) -> str:
        return f"Labels({self._map!r})"

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self._items)


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One matchExpressions entry."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Kubernetes label selectors: NotIn and DoesNotExist match objects without the key.
        if self.operator is Operator.IN:
            return labels.get(self.key) in self.values
        if self.operator is Operator.NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return f"has {self.key}"
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"no {self.key}"
        word = "in" if self.operator is Operator.IN else "not in"
        return f"{self.key} {word} ({', '.join(self.values)})"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes LabelSelector. The empty selector matches everything.

    matchLabels and matchExpressions are ANDed; matchLabels entries are kept as In requirements
    with one value, which is what the API server does too.
    """

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def from_labels(cls, match_labels: Mapping[str, str]) -> LabelSelector:
        return cls(tuple(Requirement(k, Operator.IN, (v,)) for k, v in sorted(match_labels.items())))

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.operator is Operator.IN and len(r.values) == 1:
                parts.append(f"{r.key}={r.values[0]}")
            else:
                parts.append(str(r))
        return ", ".join(parts) if parts else "(all)"
