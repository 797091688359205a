"""Definition documents: YAML/JSON text in, Python objects and located errors out.

Agent (and later workflow) definitions arrive as YAML or JSON. This module
parses them with PyYAML's safe loader, keeps a map from field paths to source
lines, and turns a Pydantic ``ValidationError`` into our error list:
``[{"path": "triggers[0].event", "message": ..., "line": 14}]``.

Parsing is bounded before anything is built: a stream over ``MAX_BYTES``, over
``MAX_NODES`` nodes counting every alias as the whole node it repeats (a
"billion laughs" of a few hundred bytes names 10^9 of them), or nested deeper
than ``inputs.MAX_DEPTH`` is refused after one pass over libyaml's events, in
time and memory proportional to its text. Parsed values then obey the same rules
as JSON bodies (``inputs``): no NUL, 64-bit integers, finite numbers. Callers on
the event loop run ``parse_yaml`` in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agentos import inputs, patterns
from agentos.errors import PayloadTooLarge, ValidationFailed
from agentos.inputs import format_path

Path = tuple[str | int, ...]
MAX_BYTES = 1024 * 1024  # of YAML text in one stream
MAX_NODES = 20_000  # scalars, mappings and sequences in one stream, aliases expanded


@dataclass
class Document:
    """One parsed document and where each of its fields came from."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    index: int = 0  # position in a multi-document stream

    def line(self, path: Path) -> int | None:
        # an error on a missing key points at its parent mapping
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def parse_yaml(text: str) -> list[Document]:
    """Parse one or more YAML documents (``---`` separated); JSON is YAML too."""
    try:
        _measure(text)
        pairs = _load_with_nodes(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(
            f"malformed YAML: {problem}" + (f" at line {line}" if line else ""),
            code="malformed_document",
            details={"errors": [{"path": "", "message": f"malformed YAML: {problem}",
                                 "line": line}]},
        ) from None
    docs = []
    for i, (node, data) in enumerate(pairs):
        lines: dict[Path, int] = {}
        if node is not None:
            _walk(node, (), lines)
        docs.append(Document(data, lines, i))
    _refuse_values(docs)
    if not docs:
        raise ValidationFailed("the document is empty", code="malformed_document",
                               details={"errors": [{"path": "", "message": "empty document",
                                                    "line": None}]})
    return docs


# libyaml's parser when PyYAML was built with it (about 10x faster), else pure Python
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _measure(text: str) -> None:
    """Refuse a stream over budget (bytes, nodes with aliases expanded, depth) from its
    events alone, before a node is built: each anchor's size is known when its node
    ends, and an alias adds that size to every container it sits in."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise PayloadTooLarge(f"the YAML stream is {size} bytes; at most {MAX_BYTES}",
                              code="document_too_large", details={"max_bytes": MAX_BYTES})
    anchored: dict[str, int] = {}  # anchor -> nodes its node stands for
    open_: list[list[Any]] = []  # containers being read: [nodes so far, anchor]
    total = 0

    def add(nodes: int, event: yaml.Event) -> None:
        nonlocal total
        if open_:
            open_[-1][0] += nodes
            counted = open_[-1][0]
        else:
            total += nodes
            counted = total
        if counted > MAX_NODES or total > MAX_NODES:
            raise PayloadTooLarge(
                f"the YAML stream stands for over {MAX_NODES} nodes once its aliases are "
                f"expanded (line {_line(event)})", code="document_too_large",
                details={"max_nodes": MAX_NODES})

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(open_) >= inputs.MAX_DEPTH:
                line = _line(event)
                raise ValidationFailed(
                    f"the document is nested deeper than {inputs.MAX_DEPTH} levels "
                    f"(line {line})", code="document_too_deep",
                    details={"errors": [{"path": "", "line": line, "message":
                                         f"nested deeper than {inputs.MAX_DEPTH} levels"}]})
            open_.append([1, event.anchor])
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            nodes, anchor = open_.pop()
            if anchor is not None:
                anchored[anchor] = nodes
            add(nodes, event)
        elif isinstance(event, yaml.AliasEvent):
            add(anchored.get(event.anchor or "", 1), event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = 1
            add(1, event)


def _line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _refuse_values(docs: list[Document]) -> None:
    """The rules of every value from outside (``inputs``): no NUL, 64-bit integers,
    finite numbers; every offence with its path and line."""
    errors = []
    for doc in docs:
        for path, message in inputs.offences(doc.data):
            errors.append({"path": format_path(path), "message": message,
                           "line": doc.line(path),
                           **({"document": doc.index} if len(docs) > 1 else {})})
    raise_invalid(errors, "document", code="invalid_input")


def _load_with_nodes(text: str) -> list[tuple[yaml.Node | None, Any]]:
    """Each document's node tree (for line numbers) and its data, from one parse."""
    loader = _Loader(text)
    try:
        out = []
        while loader.check_node():
            node = loader.get_node()
            out.append((node, loader.construct_document(node)))
        return out
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                _walk(value, (*path, key.value), lines)
                # errors on a field point at its key, not where its value starts
                lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def _data_path(data: Any, loc: Sequence[str | int]) -> tuple[Path, str | None]:
    """Pydantic's ``loc`` minus the union-tag steps that are not in the data, and the
    tag of the last tagged union it went through (``command`` for a command handler)."""
    path: list[str | int] = []
    current = data
    tag: str | None = None
    for i, part in enumerate(loc):
        if i < len(loc) - 1 and isinstance(current, dict) and isinstance(part, str) \
                and current.get(TAG) == part:
            tag = part  # the member a tagged union chose, even where a key has its name
            continue
        if _has(current, part):
            current = current[part]
            path.append(part)
        elif i == len(loc) - 1 and isinstance(current, dict):
            path.append(part)  # a missing or unknown key
        elif isinstance(part, str) and "[" in part:
            continue  # a union member's name, e.g. "function-after[...]"
        elif isinstance(current, dict | list):
            continue  # a tagged union's tag
        else:
            break
    return tuple(path), tag


def _has(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def errors_from(exc: ValidationError, doc: Document,
                 members: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every problem Pydantic found, each with its field path and source line.
    ``members``: for a tagged union's member, by tag, what it takes (``a command
    handler takes argv, env, cwd``), said after an unknown field of it. A missing
    field comes after the other problems of its mapping: an unknown one is usually
    its cause."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        path, tag = _data_path(doc.data, err["loc"])
        where = format_path(path)
        # a union reports once per member ("valid integer", "valid number"): keep the first
        if where in seen:
            continue
        seen.add(where)
        message = _message(err)
        if err["type"] == "extra_forbidden" and tag is not None and members and tag in members:
            message += f"; {members[tag]}"
        out.append({"path": where, "message": message, "line": doc.line(path),
                    "_parent": format_path(path[:-1]), "_kind": err["type"]})
    first: dict[str, int] = {}
    for e in out:
        first.setdefault(e["_parent"], len(first))
    out.sort(key=lambda e: (first[e["_parent"]], e["_kind"] == "missing"))
    return [{k: v for k, v in e.items() if not k.startswith("_")} for e in out]


TAG = "type"  # the key naming a tagged union's member (agent_spec.Handler's)


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    if kind == "string_pattern_mismatch" and (
            ours := patterns.mismatch(err["ctx"]["pattern"], err["input"])):
        return ours
    message: str = err["msg"]
    # Pydantic prefixes messages of custom validators with "Value error, "
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


M = TypeVar("M", bound=BaseModel)


def validated(doc: Document, model: type[M], what: str,
              cross: Callable[[Document], list[dict[str, Any]]],
              members: Mapping[str, str] | None = None) -> M:
    """``doc`` as ``model``, or ``ValidationFailed`` listing every error: Pydantic's
    (``members`` as ``errors_from`` takes them) with the rules across fields that
    ``cross`` finds on the raw mapping. A document that is not a mapping is one error."""
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else type(doc.data).__name__
        article = "an" if what[0] in "aeiou" else "a"
        raise_invalid([{"path": "", "message": f"{article} {what} must be a mapping, "
                                                f"not {kind}", "line": doc.line(())}], what)
    errors = cross(doc)
    try:
        spec = model.model_validate(doc.data)
    except ValidationError as exc:
        raise_invalid(errors_from(exc, doc, members) + errors, what)
        raise  # unreachable: raise_invalid raised
    raise_invalid(errors, what)
    return spec


def raise_invalid(errors: list[dict[str, Any]], what: str, code: str | None = None) -> None:
    if errors:
        first = errors[0]
        where = f" at {first['path']}" if first["path"] else ""
        line = f" (line {first['line']})" if first.get("line") else ""
        raise ValidationFailed(
            f"invalid {what}: {first['message']}{where}{line}"
            + (f" and {len(errors) - 1} more" if len(errors) > 1 else ""),
            code=code, details={"errors": errors},
        )

