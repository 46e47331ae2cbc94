"""Fuzzing the loader and the Calico selector parser (strategies and checks in loader_fuzz.py):
random bytes, YAML-ish text and mutated valid clusters never make load_inventory raise anything but
InputErrors (one line per problem), and random selector text never makes parse_selector raise
anything but SelectorError. bench/fuzz.py runs both for many more examples."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from loader_fuzz import check_loader, check_selector, loader_inputs, selector_texts

from netfence.model.calico_selector import MAX_DEPTH, SelectorError, parse_selector

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(loader_inputs())
def test_only_input_errors_come_out_of_the_loader(data: bytes) -> None:
    check_loader(data)


@settings(max_examples=1000, deadline=None)
@given(selector_texts())
def test_only_selector_errors_come_out_of_the_selector_parser(text: str) -> None:
    check_selector(text)


@pytest.mark.parametrize("opener", ["!", "(!", "(a == 'b' && ", "(a == 'b' || !"])
def test_a_selector_nested_past_the_limit_is_an_error_not_a_recursion_error(opener: str) -> None:
    def nested(depth: int) -> str:
        return opener * depth + "a == 'b'" + ")" * (depth * opener.count("("))

    parse_selector(nested(MAX_DEPTH // 2 - 1))
    for depth in (MAX_DEPTH + 1, 5000):
        with pytest.raises(SelectorError, match=f"^nested more than {MAX_DEPTH} levels deep at position "):
            parse_selector(nested(depth))


def test_a_long_invalid_selector_is_diagnosed_in_linear_time() -> None:
    # The diagnosis replays the parse; asking the parser what it accepted before every token used
    # to take 34 s for 20,000 `(`.
    started = time.perf_counter()
    with pytest.raises(SelectorError) as caught:
        parse_selector("(" * 20_000)
    assert caught.value.position == 20_000
    assert time.perf_counter() - started < 2.0


def test_a_selector_error_message_is_one_line_even_when_the_selector_holds_a_newline() -> None:
    # Found by bench/fuzz.py: a string token holding a newline was echoed as it was.
    with pytest.raises(SelectorError) as caught:
        parse_selector("a == 'b''\n'web'")
    assert caught.value.message == "expected '&&', '||' or the end of the selector after 'b', found the string '\\n'"
