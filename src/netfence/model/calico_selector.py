"""Calico selector expressions: the syntax tree, its evaluation against labels, the parser.

`parse_selector(text)` (below) turns the text into a `Selector`; `Selector.matches(labels)`
evaluates it. `all()` and `global()` are true against labels; where Calico gives them a special
meaning (a rule's namespaceSelector), the caller passes their values. `format_expr(expr)` prints
a tree back as canonical selector text.

The language is specified in shared/semantics/calico-and-anp.md, section 1. netfence accepts one
trailing comma in a set (`{"a",}`), as Calico does: a policy Calico stores must load here too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # lark is imported when the first selector is parsed, not with the model
    from lark import Lark, Token
    from lark.exceptions import UnexpectedInput
    from lark.parsers.lalr_interactive_parser import InteractiveParser


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


MAX_LABEL_LENGTH = 512
#: Deepest expression tree (`!`, `&&` and `||` nested through parentheses). Evaluating, hashing
#: and printing a tree recurse, so a selector of thousands of `!` would end in a RecursionError;
#: real selectors nest a few levels.
MAX_DEPTH = 100

# Calico 1.1: operators are recognised only right after a label name (the contextual lexer only
# tries the terminals the parser can accept next), which is what lets `in`, `contains` or `has` be
# label names. Operator words must not run into a label character (`a inf "x"` is an error);
# two-word operators take any blanks between the words, none included. `has(`, `all(`, `global(`
# are written together. Blanks are space and tab only; any other whitespace is an error.
_GRAMMAR = r"""
start: or_expr?

?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND unary)*
?unary: primary
      | _BANG unary                                   -> negate
?primary: _LPAR or_expr _RPAR
        | ALL                                         -> all_of
        | GLOBAL                                      -> global_of
        | _HAS LABEL _RPAR                            -> has
        | LABEL (EQ | NE | CONTAINS | STARTSWITH | ENDSWITH) STRING  -> compare
        | LABEL (IN | NOTIN) _LBRACE _items? _RBRACE  -> in_set
_items: STRING (_COMMA STRING)* _COMMA?

LABEL: /[a-zA-Z0-9_.\/-]+/
STRING: /"[^"]*"|'[^']*'/
EQ: "=="
NE: "!="
_AND: "&&"
_OR: "||"
_BANG: "!"
_LPAR: "("
_RPAR: ")"
_LBRACE: "{"
_RBRACE: "}"
_COMMA: ","
IN.2: /in(?![a-zA-Z0-9_.\/-])/
NOTIN.2: /not[ \t]*in(?![a-zA-Z0-9_.\/-])/
CONTAINS.2: /contains(?![a-zA-Z0-9_.\/-])/
STARTSWITH.2: /starts[ \t]*with(?![a-zA-Z0-9_.\/-])/
ENDSWITH.2: /ends[ \t]*with(?![a-zA-Z0-9_.\/-])/
ALL.2: /all\([ \t]*\)/
GLOBAL.2: /global\([ \t]*\)/
_HAS.2: "has("
_BLANK: /[ \t]+/
%ignore _BLANK
"""

_COMPARE_OPS = {
    "EQ": CompareOp.EQ,
    "NE": CompareOp.NE,
    "CONTAINS": CompareOp.CONTAINS,
    "STARTSWITH": CompareOp.STARTS_WITH,
    "ENDSWITH": CompareOp.ENDS_WITH,
}


class _Build:
    """Builds the syntax tree while the LALR parser reduces (no lark tree is made): lark calls
    the method named after each rule, as it would a Transformer's."""

    def start(self, items: list[Expr]) -> Expr | None:
        return items[0] if items else None

    def or_expr(self, items: list[Expr]) -> Expr:
        return Or(tuple(items))

    def and_expr(self, items: list[Expr]) -> Expr:
        return And(tuple(items))

    def negate(self, items: list[Expr]) -> Expr:
        return Not(items[0])

    def all_of(self, _: list[Token]) -> Expr:
        return AllOf()

    def global_of(self, _: list[Token]) -> Expr:
        return GlobalOf()

    def has(self, items: list[Token]) -> Expr:
        return Has(str(items[0]))

    def compare(self, items: list[Token]) -> Expr:
        key, op, value = items
        return Compare(str(key), _COMPARE_OPS[op.type], value[1:-1])

    def in_set(self, items: list[Token]) -> Expr:
        key, op, *values = items
        return InSet(str(key), frozenset(v[1:-1] for v in values), negated=op.type == "NOTIN")


def _check_label(token: Token) -> Token:
    if len(token) > MAX_LABEL_LENGTH:
        raise SelectorError(
            f"label name longer than {MAX_LABEL_LENGTH} characters ({len(token)})", token.start_pos or 0
        )
    return token


@functools.cache
def _parser() -> Lark:
    """The LALR parser, built once on first use (building it takes milliseconds, parsing microseconds)."""
    from lark import Lark

    return Lark(
        _GRAMMAR,
        parser="lalr",
        lexer="contextual",
        transformer=_Build(),
        lexer_callbacks={"LABEL": _check_label},
        maybe_placeholders=False,
        propagate_positions=False,
    )


def parse_selector(text: str) -> Selector:
    """Parse a Calico selector; raise SelectorError naming the position of the problem.

    Results are cached by text: the same selector is parsed for every policy and rule using it.
    An empty or blank-only selector gives `Selector(text, None)`, which means `all()`.
    """
    return _parse_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Selector:
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        expr = cast("Expr | None", _parser().parse(text))  # the transformer built it
    except UnexpectedInput as exc:
        raise _diagnose(text, exc) from None
    except LarkError as exc:  # not expected from a finished LALR grammar; never let lark's own type out
        raise SelectorError(f"invalid selector ({exc})", 0) from None
    if expr is not None and _depth(expr) > MAX_DEPTH:
        raise SelectorError(f"nested more than {MAX_DEPTH} levels deep", _deep_position(text))
    return Selector(text, expr)


def _depth(expr: Expr) -> int:
    """The tree's depth, without recursion (the tree may be too deep to recurse over)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, Not):
            stack.append((node.expr, depth + 1))
        elif isinstance(node, And | Or):
            stack.extend((item, depth + 1) for item in node.items)
    return deepest


def _deep_position(text: str) -> int:
    """Roughly where the nesting got too deep: where open parentheses and `!`s since the last
    label first pass half the limit (each level of parentheses can add an `&&` and an `||`)."""
    opened = bangs = 0
    quote = ""
    for position, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            opened += 1
        elif char == ")":
            opened -= 1
        elif char == "!" and not text.startswith("!=", position):
            bangs += 1
        elif char.isalnum():
            bangs = 0
        if opened + bangs > MAX_DEPTH // 2:
            return position
    return 0


# --- error messages ---------------------------------------------------------------------------

_STARTS_EXPRESSION = frozenset({"LABEL", "_BANG", "_LPAR", "ALL", "GLOBAL", "_HAS"})
_OPERATORS = frozenset({"EQ", "NE", "IN", "NOTIN", "CONTAINS", "STARTSWITH", "ENDSWITH"})
_TERMINAL_NAMES = {  # in the order messages list them
    "STRING": "a quoted string",
    "LABEL": "a label name",
    "_LBRACE": "'{'",
    "_COMMA": "','",
    "_RBRACE": "'}'",
    "_AND": "'&&'",
    "_OR": "'||'",
    "_RPAR": "')'",
    "$END": "the end of the selector",
}
_WHITESPACE_NAMES = {"\n": "a newline", "\r": "a carriage return", "\f": "a form feed", "\v": "a vertical tab"}
_LONE = {"=": "==", "&": "&&", "|": "||"}


def _describe_expected(names: set[str]) -> str:
    parts: list[str] = []
    if _STARTS_EXPRESSION <= names:
        parts.append("a selector expression (a label name, 'has(', 'all()', 'global()', '!' or '(')")
        names = names - _STARTS_EXPRESSION
    if _OPERATORS <= names:
        parts.append("an operator ('==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with')")
        names = names - _OPERATORS
    parts += [text for name, text in _TERMINAL_NAMES.items() if name in names]
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


def _show_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the selector"
    if token.type == "STRING":
        return f"the string {_printable(token.value)}"
    return f"'{_printable(token.value)}'"


def _printable(text: str) -> str:
    """A token as a message shows it: a string may hold a newline, a message is one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _diagnose(text: str, exc: UnexpectedInput) -> SelectorError:
    """Replay a failed parse token by token to say what was expected where.

    The replay asks the parser what it accepts before each token, which names every choice
    (`&&`, `||` and `)` after a parenthesised group), where lark's own error may come after
    reductions that hide some of them. Only failed parses pay for this.
    """
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

    parser = _parser().parse_interactive(text)
    previous: Token | None = None
    # Tokens before the place lark failed were taken: asking what the parser accepts before
    # each of them (a copy of its whole stack per terminal) made a long invalid selector cost
    # quadratic time (34 s for 20,000 `(`).
    failed_at = exc.pos_in_stream if isinstance(exc, UnexpectedToken | UnexpectedCharacters) else None
    try:
        for token in parser.iter_parse():
            if failed_at is not None and (token.start_pos or 0) < failed_at:
                previous = token
                continue
            accepted = _accepts(parser)
            if token.type not in accepted:
                return _unexpected(token.start_pos or 0, _show_token(token), accepted, previous)
            previous = token
        accepted = _accepts(parser)
        if "$END" not in accepted:
            return _unexpected(len(text), "the end of the selector", accepted, previous)
    except UnexpectedToken as err:  # the lexer read a token the parser cannot take here
        return _unexpected(err.token.start_pos or 0, _show_token(err.token), _accepts(parser), previous)
    except UnexpectedCharacters as err:  # no token at all
        position = err.pos_in_stream or 0
        char = text[position]
        if char in "\"'":
            return SelectorError(f"unterminated string: no closing {char}", position)
        if char.isspace():
            name = _WHITESPACE_NAMES.get(char, f"the whitespace character {char!r}")
            return SelectorError(f"{name} is not allowed in a selector; only spaces and tabs separate tokens", position)
        found = f"a lone '{char}' (the operator is '{_LONE[char]}')" if char in _LONE else repr(char)
        return _unexpected(position, found, _accepts(parser), previous)
    except LarkError:
        pass
    return SelectorError(f"invalid selector ({type(exc).__name__})", getattr(exc, "pos_in_stream", None) or 0)


def _accepts(parser: InteractiveParser) -> set[str]:
    """Terminal names (and `$END`) the parser can take next."""
    return set(parser.accepts())  # type: ignore[no-untyped-call]  # lark leaves accepts() unannotated


def _unexpected(position: int, found: str, accepted: set[str], previous: Token | None) -> SelectorError:
    if previous is None:
        # Nothing read yet: the end is "expected" only in the sense that "" is a valid selector.
        return SelectorError(f"expected {_describe_expected(accepted - {'$END'})}, found {found}", position)
    shown = _printable(previous.value) if previous.type == "STRING" else f"'{_printable(previous.value)}'"
    return SelectorError(f"expected {_describe_expected(accepted)} after {shown}, found {found}", position)


# --- printing -------------------------------------------------------------------------------


def format_expr(expr: Expr) -> str:
    """Canonical selector text for `expr`, which `parse_selector` reads back to an equal tree.

    Parentheses only where precedence needs them or a nested And/Or was written as one; sets
    sorted; values in double quotes unless they contain one. A value holding both quote kinds
    cannot be written in the selector language (ValueError).
    """
    return _format(expr, "top")


def _format(expr: Expr, context: str) -> str:
    match expr:
        case Or(items) if len(items) >= 2:
            text = " || ".join(_format(e, "or") for e in items)
            return text if context == "top" else f"({text})"
        case And(items) if len(items) >= 2:
            text = " && ".join(_format(e, "and") for e in items)
            return f"({text})" if context in ("and", "not") else text
        case And((item,)) | Or((item,)):
            return _format(item, context)
        case And(()):
            return "all()"
        case Or(()):
            return "!all()"
        case Not(inner):
            return "!" + _format(inner, "not")
        case AllOf():
            return "all()"
        case GlobalOf():
            return "global()"
        case Has(key):
            return f"has({key})"
        case Compare(key, op, value):
            return f"{key} {op.value} {_quote(value)}"
        case InSet(key, values, negated):
            listed = ", ".join(_quote(v) for v in sorted(values))
            return f"{key} {'not in' if negated else 'in'} {{{listed}}}"
    raise TypeError(f"not a selector expression: {expr!r}")


def _quote(value: str) -> str:
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise ValueError(f"a selector string cannot hold both kinds of quote: {value!r}")
