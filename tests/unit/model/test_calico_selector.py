"""The Calico selector language (semantics note, section 1): tokens, grammar, meaning, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netfence.model.calico_selector import (
    MAX_LABEL_LENGTH,
    AllOf,
    And,
    Compare,
    CompareOp,
    Expr,
    GlobalOf,
    Has,
    InSet,
    Not,
    Or,
    Selector,
    SelectorError,
    format_expr,
    parse_selector,
)


def matches(selector: str, **labels: str) -> bool:
    return parse_selector(selector).matches(labels)


def error(selector: str) -> SelectorError:
    with pytest.raises(SelectorError) as info:
        parse_selector(selector)
    return info.value


# --- meaning of each operation (1.3), including labels that are absent --------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ('a == "x"', {"a": "x"}, True),
        ('a == "x"', {"a": "X"}, False),
        ('a == "x"', {}, False),
        ('a == ""', {"a": ""}, True),
        ('a != "x"', {"a": "y"}, True),
        ('a != "x"', {"a": "x"}, False),
        ('a != "x"', {}, True),
        ('a in {"x", "y"}', {"a": "y"}, True),
        ('a in {"x", "y"}', {"a": "z"}, False),
        ('a in {"x", "y"}', {}, False),
        ("a in {}", {"a": "x"}, False),
        ('a not in {"x", "y"}', {"a": "z"}, True),
        ('a not in {"x", "y"}', {"a": "x"}, False),
        ('a not in {"x", "y"}', {}, True),
        ("a not in {}", {"a": "x"}, True),
        ("has(a)", {"a": ""}, True),
        ("has(a)", {"b": "a"}, False),
        ('a contains "bc"', {"a": "abcd"}, True),
        ('a contains "bc"', {"a": "acbd"}, False),
        ('a contains ""', {"a": ""}, True),
        ('a contains ""', {}, False),
        ('a starts with "ab"', {"a": "abc"}, True),
        ('a starts with "ab"', {"a": "cab"}, False),
        ('a starts with ""', {}, False),
        ('a ends with "bc"', {"a": "abc"}, True),
        ('a ends with "bc"', {"a": "bca"}, False),
        ('a ends with ""', {}, False),
        ("all()", {}, True),
        ("global()", {}, True),
        ("!all()", {"a": "x"}, False),
        ('!a == "x"', {}, True),
        ('!!a == "x"', {"a": "x"}, True),
        ('!!!a == "x"', {"a": "x"}, False),
    ],
)
def test_each_operation_means_what_section_1_3_says(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected


def test_comparisons_are_case_sensitive_for_names_and_values() -> None:
    assert not matches('App == "web"', app="web")
    assert not matches('app == "Web"', app="web")


def test_all_and_global_take_the_values_the_caller_gives_them() -> None:
    selector = parse_selector("global() || has(a)")
    assert selector.matches({}, global_=True)
    assert not selector.matches({}, global_=False)
    assert selector.matches({"a": "x"}, global_=False)
    assert not parse_selector("all()").matches({}, all_=False)
    assert selector.uses_global() and not parse_selector("all()").uses_global()


@pytest.mark.parametrize("text", ["", " ", " \t  "])
def test_empty_or_blank_selector_parses_to_no_expression_and_matches_everything(text: str) -> None:
    selector = parse_selector(text)
    assert selector == Selector(text, None)
    assert selector.matches({}) and selector.matches({"a": "b"})
    assert str(selector) == "all()"


# --- grammar and precedence (1.2) ----------------------------------------------------------------


def test_not_binds_to_the_single_operation_after_it_and_and_binds_tighter_than_or() -> None:
    assert parse_selector('!a == "x" && b == "y"').expr == And(
        (Not(Compare("a", CompareOp.EQ, "x")), Compare("b", CompareOp.EQ, "y"))
    )
    assert parse_selector("has(a) || has(b) && has(c)").expr == Or((Has("a"), And((Has("b"), Has("c")))))
    assert parse_selector("(has(a) || has(b)) && has(c)").expr == And((Or((Has("a"), Has("b"))), Has("c")))
    assert parse_selector("!(has(a) || has(b))").expr == Not(Or((Has("a"), Has("b"))))


def test_not_applied_to_a_group_negates_the_whole_group() -> None:
    assert matches('!(a == "x" && b == "y")', a="x")
    assert not matches('!(a == "x" || b == "y")', b="y")


@pytest.mark.parametrize(
    ("spelling", "op"),
    [
        ('a notin {"x"}', "not in"),
        ('a not in {"x"}', "not in"),
        ('a not \t  in {"x"}', "not in"),
        ('a startswith "x"', CompareOp.STARTS_WITH),
        ('a starts   with "x"', CompareOp.STARTS_WITH),
        ('a endswith "x"', CompareOp.ENDS_WITH),
        ('a ends\twith "x"', CompareOp.ENDS_WITH),
        ('a contains"x"', CompareOp.CONTAINS),
        ('a in{"x"}', "in"),
        ('a=="x"', CompareOp.EQ),
        ("a!='x'", CompareOp.NE),
    ],
)
def test_operators_may_be_joined_or_spread_over_blanks(spelling: str, op: str) -> None:
    expr = parse_selector(spelling).expr
    if op in ("in", "not in"):
        assert expr == InSet("a", frozenset({"x"}), negated=op == "not in")
    else:
        assert isinstance(expr, Compare) and expr.op is op and expr.key == "a" and expr.value == "x"


@pytest.mark.parametrize(
    ("selector", "expr"),
    [
        ('contains contains "contains"', Compare("contains", CompareOp.CONTAINS, "contains")),
        ('in in {"in"}', InSet("in", frozenset({"in"}))),
        ('not not in {"x"}', InSet("not", frozenset({"x"}), negated=True)),
        ('has == "x"', Compare("has", CompareOp.EQ, "x")),
        ('all != "x"', Compare("all", CompareOp.NE, "x")),
        ('global ends with "x"', Compare("global", CompareOp.ENDS_WITH, "x")),
        ('startswith startswith "x"', Compare("startswith", CompareOp.STARTS_WITH, "x")),
        ('inf == "x"', Compare("inf", CompareOp.EQ, "x")),
        ("has(has)", Has("has")),
        ("has(in)", Has("in")),
    ],
)
def test_keywords_are_label_names_where_a_label_is_expected(selector: str, expr: Expr) -> None:
    assert parse_selector(selector).expr == expr


@pytest.mark.parametrize(
    "label", ["k8s-app", "calico/k8s_ns", "kubernetes.io/metadata.name", "projectcalico.org/namespace", "0", "-._/"]
)
def test_label_names_take_letters_digits_and_dot_slash_dash_underscore(label: str) -> None:
    assert parse_selector(f'{label} == "v"').matches({label: "v"})


def test_has_allows_blanks_inside_its_parentheses() -> None:
    assert parse_selector("has( foo )").expr == Has("foo")
    assert parse_selector("has(\tfoo)").expr == Has("foo")


def test_all_and_global_allow_blanks_inside_their_parentheses() -> None:
    assert parse_selector("all( ) && global(\t)").expr == And((AllOf(), GlobalOf()))


def test_strings_take_either_quote_and_hold_the_other_kind() -> None:
    assert parse_selector("""a == "it's" """).expr == Compare("a", CompareOp.EQ, "it's")
    assert parse_selector("""a == 'say "hi"'""").expr == Compare("a", CompareOp.EQ, 'say "hi"')
    assert parse_selector('a in {"", \'y\'}').expr == InSet("a", frozenset({"", "y"}))


def test_strings_have_no_escapes_and_run_to_the_next_same_quote() -> None:
    assert parse_selector(r'a == "x\"').expr == Compare("a", CompareOp.EQ, "x\\")
    # Inside a literal nothing is a separator, so a newline there is part of the value.
    assert parse_selector('a == "x\ny"').expr == Compare("a", CompareOp.EQ, "x\ny")


def test_one_trailing_comma_in_a_set_is_accepted_as_calico_does() -> None:
    assert parse_selector('a in {"x",}').expr == InSet("a", frozenset({"x"}))
    assert parse_selector('a not in {"x", "y" , }').expr == InSet("a", frozenset({"x", "y"}), negated=True)


def test_a_label_name_of_exactly_the_maximum_length_is_accepted() -> None:
    name = "k" * MAX_LABEL_LENGTH
    assert parse_selector(f"has({name})").expr == Has(name)


def test_parse_results_are_cached_by_text() -> None:
    assert parse_selector('app == "cached"') is parse_selector('app == "cached"')


# --- errors: message and 0-based position -----------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "position"),
    [
        ("a == b", 5),
        ("'b' == a", 0),
        ("a == 1", 5),
        ('a in "x"', 5),
        ('a in {"x" "y"}', 10),
        ("a in {,}", 6),
        ('a in {"x",,}', 10),
        ('a == "b" c == "d"', 9),
        ('(a == "b"))', 10),
        ('a == "b" ||', 11),
        ('a == "b" &&   ', 14),
        ('(a == "b"', 9),
        ('a == "b', 5),
        ("a == 'b", 5),
        ('a = "b"', 2),
        ('a == "b" & c == "d"', 9),
        ('a == "b" | c == "d"', 9),
        ('a == "b"\n', 8),
        ('a ==\n"b"', 4),
        ('a\r\n== "b"', 1),
        ('a\u00a0== "b"', 1),
        ("has (foo)", 4),
        ("has()", 4),
        ("has(foo", 7),
        ('label inf "x"', 6),
        ('label ends withs "x"', 6),
        ("all(x)", 3),
        ("a", 1),
        ('a ~= "x"', 2),
        ("!", 1),
        (")", 0),
        ('a == "x" && (b == "y" c', 22),
    ],
)
def test_invalid_selector_names_the_position_of_the_problem(selector: str, position: int) -> None:
    problem = error(selector)
    assert problem.position == position
    assert str(problem) == f"{problem.message} at position {position}"


def test_a_label_name_longer_than_the_maximum_is_an_error_at_its_start() -> None:
    problem = error('x == "y" && ' + "k" * (MAX_LABEL_LENGTH + 1) + ' == "v"')
    assert problem.position == 12
    assert problem.message == "label name longer than 512 characters (513)"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a == b", "expected a quoted string after '==', found 'b' at position 5"),
        ('a in "x"', """expected '{' after 'in', found the string "x" at position 5"""),
        ('a in {"x" "y"}', """expected ',' or '}' after "x", found the string "y" at position 10"""),
        ("a in {,}", "expected a quoted string or '}' after '{', found ',' at position 6"),
        (
            '(a == "b"))',
            "expected '&&', '||' or the end of the selector after ')', found ')' at position 10",
        ),
        (
            'a == "b" ||',
            "expected a selector expression (a label name, 'has(', 'all()', 'global()', '!' or '(') "
            "after '||', found the end of the selector at position 11",
        ),
        ('a == "b', 'unterminated string: no closing " at position 5'),
        (
            'a = "b"',
            "expected an operator ('==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with') "
            "after 'a', found a lone '=' (the operator is '==') at position 2",
        ),
        (
            'a == "b" & c == "d"',
            """expected '&&', '||' or the end of the selector after "b", """
            "found a lone '&' (the operator is '&&') at position 9",
        ),
        ('a == "b"\n', "a newline is not allowed in a selector; only spaces and tabs separate tokens at position 8"),
        ("has()", "expected a label name after 'has(', found ')' at position 4"),
        (
            "'b' == a",
            "expected a selector expression (a label name, 'has(', 'all()', 'global()', '!' or '('), "
            "found the string 'b' at position 0",
        ),
    ],
)
def test_error_messages_say_what_was_expected_and_what_was_found(selector: str, message: str) -> None:
    assert str(error(selector)) == message


FRAGMENTS = [
    "a", "b", "in", "not", "has", "all", "global", "contains", "starts", "with", "ends",
    " ", "\t", "\n", "(", ")", "{", "}", ",", '"', "'", '"x"', "'y'", "=", "==", "!=", "!",
    "&", "&&", "|", "||", "has(", "all()", "global()", "@", "é",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_any_text_parses_or_raises_selector_error_with_a_position_inside_it(text: str) -> None:
    try:
        parse_selector(text)
    except SelectorError as problem:
        assert 0 <= problem.position <= len(text)
        assert problem.message


# --- printing and reading back ----------------------------------------------------------------

KEYS = ("a", "b", "app", "k8s-app", "calico/k8s_ns", "in", "not", "has", "all", "contains", "notin", "starts")
VALUES = ("", "x", "y", "xy", "it's", 'say "hi"')

atoms: st.SearchStrategy[Expr] = st.one_of(
    st.just(AllOf()),
    st.just(GlobalOf()),
    st.builds(Has, st.sampled_from(KEYS)),
    st.builds(Compare, st.sampled_from(KEYS), st.sampled_from(CompareOp), st.sampled_from(VALUES)),
    st.builds(InSet, st.sampled_from(KEYS), st.frozensets(st.sampled_from(VALUES), max_size=3), st.booleans()),
)


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    two_or_more = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(st.builds(Not, children), st.builds(And, two_or_more), st.builds(Or, two_or_more))


expressions = st.recursive(atoms, _compound, max_leaves=12)
label_maps = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=6)


@settings(max_examples=300, deadline=None)
@given(expressions, st.lists(label_maps, min_size=1, max_size=5), st.booleans(), st.booleans())
def test_printed_expression_parses_back_to_the_same_tree_and_meaning(
    expr: Expr, labels: list[dict[str, str]], all_: bool, global_: bool
) -> None:
    text = format_expr(expr)
    parsed = parse_selector(text)
    assert parsed.expr == expr, text
    for one in labels:
        assert parsed.matches(one, all_=all_, global_=global_) == Selector(text, expr).matches(
            one, all_=all_, global_=global_
        )


def test_printing_adds_parentheses_only_where_precedence_needs_them() -> None:
    a, b, c = Has("a"), Has("b"), Has("c")
    assert format_expr(Or((And((a, b)), c))) == "has(a) && has(b) || has(c)"
    assert format_expr(And((Or((a, b)), c))) == "(has(a) || has(b)) && has(c)"
    assert format_expr(Not(And((a, b)))) == "!(has(a) && has(b))"
    assert format_expr(InSet("k", frozenset({"y", "x"}), negated=True)) == 'k not in {"x", "y"}'
    assert format_expr(Compare("k", CompareOp.STARTS_WITH, 'a"b')) == "k starts with 'a\"b'"


def test_a_value_with_both_quote_kinds_cannot_be_printed() -> None:
    with pytest.raises(ValueError, match="both kinds of quote"):
        format_expr(Compare("k", CompareOp.EQ, "'\""))
