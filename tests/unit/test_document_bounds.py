"""YAML parsing is bounded before anything is built: bytes, nodes with aliases
expanded, depth; parsed values obey the same rules as JSON bodies."""

from __future__ import annotations

import json
import time

import pytest

from agentos import documents, inputs
from agentos.errors import PayloadTooLarge, ValidationFailed


def laughs(levels: int, width: int = 9) -> str:
    """A "billion laughs": each level an anchored list of ``width`` aliases of the last."""
    lines = ["a: &a [" + ",".join(["lol"] * width) + "]"]
    for n in range(1, levels):
        this, last = chr(ord("a") + n), chr(ord("a") + n - 1)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{last}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once() -> None:
    bomb = laughs(9)  # 9^9 = 387 million strings, in 342 bytes
    assert len(bomb) < 400
    began = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as refused:
        documents.parse_yaml(bomb)
    assert time.perf_counter() - began < 5.0  # milliseconds; expanding it takes minutes
    assert refused.value.code == "document_too_large"


def test_aliases_count_as_the_nodes_they_repeat() -> None:
    # 9 + 9*9 + 9*81 + 4 = 823 nodes: well within the budget, parsed whole
    [doc] = documents.parse_yaml(laughs(3))
    assert doc.data["c"][8][8] == ["lol"] * 9
    # the same shape one level wider passes the budget only while it fits
    width = 30  # 30^3 = 27,000 strings > MAX_NODES
    with pytest.raises(PayloadTooLarge):
        documents.parse_yaml(laughs(3, width))


def test_many_plain_nodes_are_refused_too() -> None:
    text = "x: [" + ", ".join("1" for _ in range(documents.MAX_NODES + 1)) + "]\n"
    with pytest.raises(PayloadTooLarge):
        documents.parse_yaml(text)


def test_a_stream_over_the_byte_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge) as refused:
        documents.parse_yaml("x: '" + "a" * documents.MAX_BYTES + "'\n")
    assert refused.value.details == {"max_bytes": documents.MAX_BYTES}


def test_nesting_is_bounded() -> None:
    fits = "x: " + "[" * (inputs.MAX_DEPTH - 1) + "]" * (inputs.MAX_DEPTH - 1) + "\n"
    documents.parse_yaml(fits)
    deep = "x: " + "[" * inputs.MAX_DEPTH + "]" * inputs.MAX_DEPTH + "\n"
    with pytest.raises(ValidationFailed) as refused:
        documents.parse_yaml(deep)
    assert refused.value.code == "document_too_deep"
    assert refused.value.details["errors"][0]["line"] == 1


@pytest.mark.parametrize(("text", "path", "line"), [
    ('name: x\ndescription: "a\\0b"\n', "description", 2),
    ('name: x\ntags: [ok, "\\x00"]\n', "tags[1]", 2),
    ("name: x\nlimits:\n  n: 99999999999999999999\n", "limits.n", 3),
    ("name: x\nlimits:\n  t: .inf\n", "limits.t", 3),
    ("name: x\nlimits:\n  t: .nan\n", "limits.t", 3),
])
def test_values_break_the_same_rules_as_json(text: str, path: str, line: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        documents.parse_yaml(text)
    assert refused.value.code == "invalid_input"
    [error] = refused.value.details["errors"]
    assert (error["path"], error["line"]) == (path, line)


def test_json_walker_paths_and_limits() -> None:
    assert inputs.problems({"a": [1, {"b\x00": "c\x00"}]}) == [
        {"path": "a[1].b\\u0000", "message": "a NUL character (\\u0000) is not allowed in a key"},
        {"path": "a[1].b\\u0000", "message": "a NUL character (\\u0000) is not allowed"}]
    assert inputs.problems({"n": [2**63 - 1, -(2**63), 2**63]}) == [
        {"path": "n[2]", "message": "integer out of range (signed 64 bits)"}]
    for raw, suspect in ((b'{"a": "b", "n": 123456789012345678}', False),
                         (b'{"n": 1234567890123456789}', True), (b'{"n": "\\u0000"}', True),
                         (b'{"n": 1e400}', True), (b'{"n": 9.5E+308}', True),
                         (b'{"n": 1e-400, "m": 1e99}', False),  # 0.0, and finite
                         (b'{"n": 9999999999999999999}', True),
                         (b'{"s": "\\u2019 \\u00e9 \\u1000"}', False),
                         (b'{"s": "a\\u0000b"}', True),
                         (b"[" + b"[[]]," * 100 + b"[]]", False),  # many, not deep
                         (b"[" * 65 + b"]" * 65, True), (b"[" * 64 + b"]" * 64, False)):
        assert inputs.needs_walk(raw, json.loads(raw)) is suspect, raw
