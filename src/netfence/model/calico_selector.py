"""Calico selector expressions: the syntax tree and its evaluation against labels.

`parse_selector(text)` (below) turns the text into a `Selector`; `Selector.matches(labels)`
evaluates it. `all()` and `global()` are true against labels; where Calico gives them a special
meaning (a rule's namespaceSelector), the caller passes their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class CompareOp(StrEnum):
    EQ = "=="
    NE = "!="
    CONTAINS = "contains"
    STARTS_WITH = "starts with"
    ENDS_WITH = "ends with"


@dataclass(frozen=True, slots=True)
class AllOf:
    """`all()`"""


@dataclass(frozen=True, slots=True)
class GlobalOf:
    """`global()`"""


@dataclass(frozen=True, slots=True)
class Has:
    key: str


@dataclass(frozen=True, slots=True)
class Compare:
    key: str
    op: CompareOp
    value: str


@dataclass(frozen=True, slots=True)
class InSet:
    key: str
    values: frozenset[str]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Not:
    expr: Expr


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr = AllOf | GlobalOf | Has | Compare | InSet | Not | And | Or


def evaluate(expr: Expr, labels: Mapping[str, str], all_: bool = True, global_: bool = True) -> bool:
    match expr:
        case AllOf():
            return all_
        case GlobalOf():
            return global_
        case Has(key):
            return key in labels
        case Compare(key, op, value):
            got = labels.get(key)
            if op is CompareOp.NE:
                return got != value  # an absent label is "not equal"
            if got is None:
                return False
            if op is CompareOp.EQ:
                return got == value
            if op is CompareOp.CONTAINS:
                return value in got
            if op is CompareOp.STARTS_WITH:
                return got.startswith(value)
            return got.endswith(value)
        case InSet(key, values, negated):
            got = labels.get(key)
            if negated:
                return got is None or got not in values
            return got is not None and got in values
        case Not(inner):
            return not evaluate(inner, labels, all_, global_)
        case And(items):
            return all(evaluate(e, labels, all_, global_) for e in items)
        case Or(items):
            return any(evaluate(e, labels, all_, global_) for e in items)
    raise TypeError(f"not a selector expression: {expr!r}")


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed Calico selector. `expr` None: the empty selector, which means `all()`."""

    text: str
    expr: Expr | None = None

    def matches(self, labels: Mapping[str, str], *, all_: bool = True, global_: bool = True) -> bool:
        if self.expr is None:
            return all_
        return evaluate(self.expr, labels, all_, global_)

    def uses_global(self) -> bool:
        return self.expr is not None and _contains_global(self.expr)

    def __str__(self) -> str:
        return self.text.strip() or "all()"


def _contains_global(expr: Expr) -> bool:
    match expr:
        case GlobalOf():
            return True
        case Not(inner):
            return _contains_global(inner)
        case And(items) | Or(items):
            return any(_contains_global(e) for e in items)
    return False


class SelectorError(ValueError):
    """An invalid selector; `position` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        self.message, self.position = message, position
        super().__init__(f"{message} at position {position}")


def parse_selector(text: str) -> Selector:
    """Parse a Calico selector; raise SelectorError naming the position of the problem."""
    raise NotImplementedError("parse_selector is being written")
