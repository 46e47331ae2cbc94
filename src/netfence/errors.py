"""The only exceptions the command line catches.

NetfenceError is the base; InputError is one problem in the user's input (exit status 2);
InputErrors carries every problem found in one load, reported together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class NetfenceError(Exception):
    """An error the CLI reports without a traceback."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: a file (or `<stdin>`) and a 1-based line, when known."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


class InputError(NetfenceError):
    """Bad user input: where, which object, which field, what was expected, what was found."""

    def __init__(
        self,
        where: Location | None,
        message: str,
        *,
        obj: str | None = None,
        field: str | None = None,
    ) -> None:
        self.where, self.obj, self.field, self.message = where, obj, field, message
        parts = [str(where)] if where is not None else []
        if obj:
            parts.append(obj)
        if field:
            parts.append(field)
        parts.append(message)
        super().__init__(one_line(": ".join(parts)))

    @classmethod
    def expected(
        cls,
        where: Location | None,
        field: str | None,
        expected: str,
        got: object,
        *,
        obj: str | None = None,
    ) -> InputError:
        return cls(where, f"expected {expected}, got {show(got)}", obj=obj, field=field)


class InputErrors(NetfenceError):
    """Every problem found in one piece of input; one line each."""

    def __init__(self, problems: Iterable[InputError]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(NetfenceError):
    """A command line that cannot be run as given."""


#: Longer strings are cut in messages: input can be hostile, a message stays one readable line.
SHOWN_CHARACTERS = 100


def show(value: object) -> str:
    """A value as messages quote it: strings quoted, YAML spellings for the rest."""
    if isinstance(value, str):
        if len(value) > SHOWN_CHARACTERS:
            return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return one_line(str(value)[: SHOWN_CHARACTERS * 2])


def one_line(text: str) -> str:
    """`text` with control characters escaped (a name or key from the input may hold a newline):
    one problem is one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
