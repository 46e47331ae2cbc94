"""The event path (`_parse_plain`) builds exactly what the composer path builds, or declines."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netfence.sources.documents import MAX_DEPTH, _parse, _parse_composed, _parse_plain

# Strings that resolve to other types when written plain, and some that look close.
TRICKY = ["80", "0x1F", "0o17", "1_000", "+1", "-2.5", ".inf", "1e3", "yes", "No", "on", "OFF", "true",
          "null", "~", "", "2024-01-02", "2024-01-02 03:04:05", "<<", "=", "!", "&a", "*a", "a: b", "- x",
          "# c", "10.244.0.1", "http", "tcp", "'q'", '"d"', "x\ny", " lead", "trail "]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
)
keys = st.one_of(st.sampled_from(TRICKY[:-6]), st.text(max_size=8), st.integers(-5, 5), st.booleans())
data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=300)
@given(st.lists(data, min_size=0, max_size=3), st.sampled_from([None, True, False]), st.booleans())
def test_event_path_builds_what_the_composer_builds(documents: list[Any], flow: bool | None, explicit: bool) -> None:
    text = yaml.safe_dump_all(documents, default_flow_style=flow, explicit_start=explicit, allow_unicode=True)
    plain = _parse_plain(text)
    # It declines only for explicit tags (the dumper tags some values), `<<` and `=`.
    assert plain is not None or any(mark in text for mark in ("!", "<<", "="))
    assert (plain if plain is not None else _parse(text)) == _parse_composed(text)


LIST = """\
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata: {name: a}
-
  kind: Pod
- x
- [1, 2]
metadata: {items: [1]}
---
# comment only
---
"""


def test_item_lines_and_document_lines_match() -> None:
    plain = _parse_plain(LIST)
    assert plain == _parse_composed(LIST)
    assert plain is not None and plain[0][1:3] == (1, [4, 7, 8, 9])


@pytest.mark.parametrize(
    "text",
    [
        "a: !!str 1\n",
        "a: !custom x\n",
        "a: &x 1\nb: *x\n",
        "b: *x\n",
        "a: 1\na: 2\n",
        "base: {a: 1}\nc:\n  <<: {a: 1}\n",
        "? [a]\n: 1\n",
        "? {a: 1}\n: 1\n",
        "a: !!int x\n",
        "a: =\n",
        "a: [1, 2\n",
        "a: b: c\n",
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
        "x: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n",
    ],
)
def test_event_path_declines_what_needs_the_composer(text: str) -> None:
    assert _parse_plain(text) is None


def test_nesting_just_under_the_limit_is_built_by_the_event_path() -> None:
    text = "x: " + "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3) + "\n"
    assert _parse_plain(text) == _parse_composed(text)
