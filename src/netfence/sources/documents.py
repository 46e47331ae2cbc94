"""Read `-f FILE|DIR|-` into Kubernetes object documents that remember where they were written.

Loading uses libyaml's C loader for speed; line numbers are looked up only when a message needs
one, by composing the file's node tree once (lazily) and walking the field path in it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netfence.errors import InputError, Location

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")
PathItem = str | int


@dataclass
class Source:
    """The text of one input file (or standard input)."""

    name: str
    text: str
    _nodes: list[yaml.Node | None] | None = field(default=None, repr=False)

    def _document_nodes(self) -> list[yaml.Node | None]:
        if self._nodes is None:
            try:
                self._nodes = list(yaml.compose_all(self.text, Loader=_Loader))
            except yaml.YAMLError:
                self._nodes = []
        return self._nodes

    def line_of(self, document: int, path: Sequence[PathItem]) -> int | None:
        """1-based line of the deepest node along `path` in document number `document`."""
        nodes = self._document_nodes()
        if document >= len(nodes) or nodes[document] is None:
            return None
        node = nodes[document]
        assert node is not None
        line: int = node.start_mark.line + 1
        for step in path:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == step:
                        line, node = key.start_mark.line + 1, value
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return line
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                return line
        return line


@dataclass
class Document:
    """One Kubernetes object as loaded, with the way back to its text."""

    source: Source
    index: int
    #: Position in a `List`'s `items`, when the object came from one.
    item: int | None
    body: dict[str, Any]
    #: The line the object starts on, noted while parsing: the location of every converted
    #: object, so it must not need the node tree.
    line: int | None = None

    def location(self, path: Sequence[PathItem] = ()) -> Location:
        if not path and self.line is not None:
            return Location(self.source.name, self.line)
        prefix: tuple[PathItem, ...] = ("items", self.item) if self.item is not None else ()
        return Location(self.source.name, self.source.line_of(self.index, prefix + tuple(path)))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def label(self) -> str:
        """`Kind namespace/name` (or `Kind name`) for messages."""
        meta = self.body.get("metadata")
        name = namespace = None
        if isinstance(meta, dict):
            name, namespace = meta.get("name"), meta.get("namespace")
        ident = str(name) if name else "(unnamed)"
        if namespace:
            ident = f"{namespace}/{ident}"
        return f"{self.kind or 'object'} {ident}"


def expand_paths(paths: Iterable[str]) -> Iterator[str]:
    """Files named, directories walked recursively (sorted), `-` for standard input."""
    for raw in paths:
        if raw == "-":
            yield raw
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            yield from (str(p) for p in found)
        else:
            yield raw


def read_source(raw: str) -> Source:
    if raw == "-":
        return Source("<stdin>", sys.stdin.read())
    path = Path(raw)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(Location(raw), "no such file or directory") from None
    except OSError as exc:
        raise InputError(Location(raw), f"cannot read: {exc.strerror}") from None
    try:
        return Source(raw, data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(Location(raw), f"not UTF-8 text (byte {exc.start})") from None


def parse_source(source: Source, problems: list[InputError]) -> list[Document]:
    """Every Kubernetes object in a source; `*List` kinds are flattened into their items.

    Documents that are not objects are added to `problems`; a YAML syntax error raises.
    """
    try:
        parsed = _parse(source.text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(Location(source.name, line), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(Location(source.name), f"invalid YAML: {exc}") from None
    documents: list[Document] = []
    for index, (body, line, item_lines) in enumerate(parsed):
        if body is None:
            continue
        doc = Document(source, index, None, body, line) if isinstance(body, dict) else None
        if doc is None:
            where = Location(source.name, source.line_of(index, ()))
            problems.append(
                InputError.expected(where, None, "a Kubernetes object (a mapping with apiVersion and kind)", body)
            )
            continue
        if doc.kind.endswith("List") and "items" in body:
            documents.extend(_list_items(doc, problems, item_lines))
        else:
            documents.append(doc)
    return documents


def _parse(text: str) -> list[tuple[Any, int, list[int]]]:
    """Each document's data, the line it starts on and those of its `items`, in one parse.

    (Composing the node tree again later for every file's locations doubled the load time, and
    keeping every node of every file alive made the garbage collector walk them over and over.)
    """
    loader = _Loader(text)
    try:
        parsed = []
        while loader.check_node():
            node = loader.get_node()
            item_lines: list[int] = []
            if isinstance(node, yaml.MappingNode):
                items = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "items"), None)
                if isinstance(items, yaml.SequenceNode):
                    item_lines = [item.start_mark.line + 1 for item in items.value]
            parsed.append((loader.construct_document(node), node.start_mark.line + 1, item_lines))
        return parsed
    finally:
        loader.dispose()


def _list_items(doc: Document, problems: list[InputError], lines: Sequence[int] = ()) -> Iterator[Document]:
    items = doc.body.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(InputError.expected(doc.location(("items",)), "items", "a list", items, obj=doc.kind))
        return
    # API list responses (PodList, ...) leave kind and apiVersion off their items; kubectl's
    # `kind: List` carries them on every item.
    item_kind = doc.kind[: -len("List")] if doc.kind != "List" else None
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            where = doc.location(("items", position))
            problems.append(InputError.expected(where, f"items[{position}]", "a Kubernetes object", item))
            continue
        if item_kind is not None:
            item.setdefault("kind", item_kind)
            item.setdefault("apiVersion", doc.api_version)
        yield Document(doc.source, doc.index, position, item, lines[position] if position < len(lines) else None)


def load_documents(paths: Sequence[str], problems: list[InputError]) -> list[Document]:
    """Read and parse every path; problems of every file are appended to `problems`."""
    documents: list[Document] = []
    for raw in expand_paths(paths):
        try:
            documents.extend(parse_source(read_source(raw), problems))
        except InputError as exc:
            problems.append(exc)
    return documents
