"""YAML is read safely: no code runs from a tag, alias bombs and deep nesting are refused fast,
duplicate keys are errors, odd but harmless files (empty, empty Lists, merge keys) still load."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netfence.errors import InputError, InputErrors
from netfence.sources import documents
from netfence.sources.documents import MAX_DEPTH, Source, parse_source, read_source
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"


def problems_of(text: str) -> list[str]:
    problems: list[InputError] = []
    try:
        parse_source(Source("f.yaml", text), problems)
    except InputError as exc:
        problems.append(exc)
    return [str(p) for p in problems]


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_python_tag_is_an_error_naming_the_tag_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"apiVersion: v1\nkind: Namespace\nmetadata: !!python/object/apply:os.system ['touch {marker}']\n"

    assert problems_of(text) == [
        "f.yaml:3: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    ]
    assert not marker.exists()


def test_a_billion_laughs_document_is_rejected_in_well_under_a_second() -> None:
    text = billion_laughs()
    started = time.perf_counter()
    found = problems_of(text)
    seconds = time.perf_counter() - started

    assert found == ["f.yaml:1: invalid YAML: aliases expand this document to 4412961516 nodes, more than 100000 (30 written)"]
    assert seconds < 0.25, f"{seconds:.3f} s"  # measured: about a millisecond


def test_aliases_within_the_limits_load_as_written() -> None:
    # Shared blocks and merge keys are ordinary YAML: a handful of expansions is fine.
    text = (
        "base: &labels {team: red, env: prod}\n"
        "apiVersion: v1\nkind: Namespace\n"
        "metadata:\n  name: a\n  labels:\n    <<: *labels\n    env: dev\n"
    )
    problems: list[InputError] = []
    (doc,) = parse_source(Source("f.yaml", text), problems)
    assert problems == []
    assert doc.body["metadata"]["labels"] == {"team": "red", "env": "dev"}


def test_an_alias_inside_the_node_it_names_is_an_error() -> None:
    assert problems_of("a: &a [1, *a]\n") == [
        "f.yaml:1: invalid YAML: an alias refers to a node that contains it (a recursive structure)"
    ]


def test_nesting_is_allowed_to_the_limit_and_refused_past_it_without_crashing() -> None:
    def nested(depth: int) -> str:
        # The document's mapping is one level; each list another.
        return NAMESPACE + "status: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"

    assert problems_of(nested(MAX_DEPTH)) == []
    assert problems_of(nested(MAX_DEPTH + 1)) == [f"f.yaml:4: invalid YAML: nested more than {MAX_DEPTH} levels deep"]
    # libyaml's composer recurses in C: this many levels used to end the process (SIGSEGV).
    started = time.perf_counter()
    assert problems_of("- " * 200_000 + "x\n") == [f"f.yaml:1: invalid YAML: nested more than {MAX_DEPTH} levels deep"]
    assert time.perf_counter() - started < 2.0


def test_a_key_written_twice_is_an_error_at_the_second_one_merge_keys_may_be_overridden() -> None:
    text = NAMESPACE + "---\n" + NAMESPACE.replace("name: a", "name: b") + "metadata: {name: c}\n"
    assert problems_of(text) == ["f.yaml:8: invalid YAML: key 'metadata' is written twice in one mapping (first at line 7)"]
    # Only the bad document is dropped; the others load.
    problems: list[InputError] = []
    assert [d.body["metadata"]["name"] for d in parse_source(Source("f.yaml", text), problems)] == ["a"]


def test_a_value_its_tag_cannot_be_built_from_is_an_error_at_that_value() -> None:
    assert problems_of(NAMESPACE + "spec: {n: !!int eighty}\n") == ["f.yaml:4: invalid YAML: cannot read 'eighty' as !!int"]
    assert problems_of("n: " + "7" * 5000 + "\n") == [
        "f.yaml:1: invalid YAML: cannot read '77777777777777777777'... (5000 characters) as !!int"
    ]


def test_control_characters_and_non_utf8_bytes_are_errors_with_their_place(tmp_path: Path) -> None:
    assert problems_of("a: 1\nb: x\x1by\n") == [
        "f.yaml:2: invalid YAML: unacceptable character #x001b: control characters are not allowed"
    ]
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputErrors, match=r"image.yaml: not UTF-8 text \(byte 0\)$"):
        load_inventory([str(binary)])


def test_empty_files_and_empty_lists_hold_no_objects(write: Write) -> None:
    paths = [
        write("empty.yaml", ""),
        write("comments.yaml", "# nothing here\n---\n---\n"),
        write("list.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
        write("list-without-items.yaml", "apiVersion: v1\nkind: List\nmetadata: {}\n"),
        write("null-items.yaml", "apiVersion: v1\nkind: PodList\nitems: null\n"),
    ]
    loaded = load_inventory(paths)
    assert loaded.objects == 0 and loaded.warnings == []


def test_standard_input_is_bounded_and_decoded_like_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(b"\xef\xbb\xbf" + NAMESPACE.encode())

    monkeypatch.setattr("sys.stdin", Stdin())
    assert read_source("-").text == NAMESPACE

    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 10)
    Stdin.buffer = io.BytesIO(NAMESPACE.encode())
    with pytest.raises(InputError, match=r"^<stdin>: more than 10 bytes"):
        read_source("-")


def test_a_device_that_never_ends_is_read_only_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 4096)
    with pytest.raises(InputError, match=r"^/dev/zero: more than 4096 bytes"):
        read_source("/dev/zero")
