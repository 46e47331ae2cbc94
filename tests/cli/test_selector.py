"""netfence selector match: stdout, stderr and exit codes, run in-process through main(argv)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

Run = Callable[..., tuple[int, str, str]]


def test_selector_match_prints_true_as_one_json_line_and_exits_zero(run: Run) -> None:
    code, out, err = run("selector", "match", 'app == "web" && has(tier)', "--labels", '{"app": "web", "tier": ""}')
    assert (code, out, err) == (0, '{"matches": true}\n', "")


def test_selector_match_prints_false_and_still_exits_zero(run: Run) -> None:
    code, out, err = run("selector", "match", 'app == "web"', "--labels", '{"app": "db"}')
    assert (code, json.loads(out), err) == (0, {"matches": False}, "")


def test_selector_match_without_labels_matches_against_no_labels(run: Run) -> None:
    assert run("selector", "match", 'app != "web"')[:2] == (0, '{"matches": true}\n')
    assert run("selector", "match", "has(app)")[:2] == (0, '{"matches": false}\n')


def test_empty_selector_matches_everything(run: Run) -> None:
    assert run("selector", "match", "", "--labels", "{}")[:2] == (0, '{"matches": true}\n')


def test_labels_may_be_given_kubectl_style(run: Run) -> None:
    code, out, _ = run("selector", "match", 'app in {"web"} && has(tier) && !has(x)', "--labels", "app=web, tier=")
    assert (code, out) == (0, '{"matches": true}\n')


def test_invalid_selector_exits_2_with_one_line_naming_the_position(run: Run) -> None:
    code, out, err = run("selector", "match", "app == web", "--labels", "{}")
    assert code == 2 and out == ""
    assert err == "error: invalid selector: expected a quoted string after '==', found 'web' at position 7\n"


def test_newline_in_selector_is_reported_not_raised(run: Run) -> None:
    code, _, err = run("selector", "match", 'app == "web"\n')
    assert code == 2
    assert err.startswith("error: invalid selector: a newline is not allowed") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("[1]", 'error: --labels: expected a JSON object of strings, like {"app": "web"}, got a list'),
        ('{"app": 1}', "error: --labels: label 'app': expected a string value, got 1"),
        ('{"app": null}', "error: --labels: label 'app': expected a string value, got null"),
        ("app", "error: --labels: expected key=value pairs separated by commas, got 'app'"),
        ("=web", "error: --labels: expected key=value pairs separated by commas, got '=web'"),
    ],
)
def test_labels_that_are_not_a_map_of_strings_exit_2_with_a_clear_message(run: Run, labels: str, message: str) -> None:
    code, out, err = run("selector", "match", "has(app)", "--labels", labels)
    assert (code, out, err) == (2, "", message + "\n")


def test_labels_that_are_not_valid_json_exit_2(run: Run) -> None:
    code, _, err = run("selector", "match", "has(app)", "--labels", '{"app": "web"')
    assert code == 2 and err.startswith("error: --labels: invalid JSON:")


def test_selector_without_a_sub_verb_is_a_usage_error(run: Run) -> None:
    code, _, err = run("selector")
    assert code == 2 and "usage:" in err
