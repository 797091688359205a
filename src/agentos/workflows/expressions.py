"""Templates of workflow definitions, evaluated by Jinja2's sandbox (never ``eval``).

A string holding ``{{ ... }}`` is a template; every other value is taken as it is.
A template that is exactly one ``{{ expr }}`` yields the expression's value itself
(a list stays a list, a number a number), anything else renders to a string:

    render({"devices": "{{ input.devices }}", "note": "for {{ run.id }}"}, scope)
    -> {"devices": ["pixel-7", "pixel-8"], "note": "for 01a2..."}

Templates see ``input``, ``steps.<id>.output``, ``item`` (in a ``for_each`` step)
and ``run``. Only expressions are allowed (no ``{% %}`` statements), so a template
cannot loop; the sandbox refuses unsafe attribute access and ``range`` past 100,000;
``*`` and ``**`` are held to results of ``MAX_SIZE``. Undefined names and attributes
are errors, not empty strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

from agentos import inputs

NAMES = frozenset({"input", "steps", "item", "run"})
MAX_SIZE = 1_000_000  # characters or items a `*` may make; digits a `**` may reach
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class ExpressionError(ValueError):
    """A template that does not compile, or failed when evaluated."""


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # the data is JSON: ``input.items`` is the key "items", not dict.items
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and abs(left) > 1 and right * max(abs(left).bit_length(), 1) > MAX_SIZE:
                raise ExpressionError("** would make a number too large")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) \
                        and len(seq) * times > MAX_SIZE:
                    raise ExpressionError(f"* would make more than {MAX_SIZE} items")
        return super().call_binop(context, operator, left, right)


_env = _Environment(undefined=StrictUndefined, autoescape=False)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def strings(value: Any, path: tuple[str | int, ...] = ()
            ) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template in a JSON value, with its path inside it."""
    if is_template(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, (*path, i))


@dataclass(frozen=True)
class Parsed:
    """What a template refers to: top-level names and the steps it reads."""

    names: frozenset[str]
    steps: frozenset[str]


def parse(template: str) -> Parsed:
    """Compile-check ``template`` and say what it refers to; ``ExpressionError`` with
    the engine's message when it does not compile."""
    if "{%" in template:
        raise ExpressionError("only {{ expressions }} are allowed, not {% statements %}")
    try:
        tree = _env.parse(template)
    except TemplateError as exc:
        raise ExpressionError(f"does not compile: {exc}") from None
    names = frozenset(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load")
    steps: set[str] = set()
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == "steps":
            steps.add(attr.attr)
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "steps" \
                and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            steps.add(item.arg.value)
    return Parsed(names, frozenset(steps))


def evaluate(template: str, scope: dict[str, Any]) -> Any:
    """The value of one template: native for a lone ``{{ expr }}``, else a string. A
    value no input may hold (a NUL, an integer past 64 bits, NaN: ``inputs``) is an
    error here, where it fails the step, not later in a write."""
    value = _evaluate(template, scope)
    for path, problem in inputs.offences(value)[:1]:
        where = f" at {inputs.format_path(path)}" if path else ""
        raise ExpressionError(f"{template!r} gave a value that cannot be stored{where}: "
                              f"{problem}")
    return value


def _evaluate(template: str, scope: dict[str, Any]) -> Any:
    try:
        single = _SINGLE.match(template)
        if single is not None and "{{" not in single.group("expr"):
            value = _env.compile_expression(single.group("expr"),
                                            undefined_to_none=False)(**scope)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return _plain(value)
        return _env.from_string(template).render(**scope)
    except ExpressionError:
        raise
    except Exception as exc:  # the sandbox's SecurityError, UndefinedError, TypeError...
        raise ExpressionError(f"{template!r}: {type(exc).__name__}: {exc}") from None


def render(value: Any, scope: dict[str, Any]) -> Any:
    """``value`` with every template in it evaluated (keys are not templates)."""
    if is_template(value):
        return evaluate(value, scope)
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value


def _plain(value: Any) -> Any:
    """A native value as JSON can hold it (tuples and generators become lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return str(value)
