"""Templates of workflow definitions, evaluated by Jinja2's sandbox (never ``eval``).

A string holding ``{{ ... }}`` is a template; every other value is taken as it is.
A template that is exactly one ``{{ expr }}`` yields the expression's value itself
(a list stays a list, a number a number), anything else renders to a string:

    render({"devices": "{{ input.devices }}", "note": "for {{ run.id }}"}, scope)
    -> {"devices": ["pixel-7", "pixel-8"], "note": "for 01a2..."}

Templates see ``input``, ``steps.<id>.output``, ``item`` (in a ``for_each`` step)
and ``run``. Only expressions are allowed (no ``{% %}`` statements), so a template
cannot loop; the sandbox refuses unsafe attribute access. Undefined names and
attributes are errors, not empty strings.

Bounds, so that no template can hang a server or fill its memory: an evaluation may
make at most ``MAX_SIZE`` characters (or items) of new values through what can grow
one (``*``, ``+``, ``~``, ``join``, ``replace``, ``batch``, ``slice``, the text it
renders) and runs at most ``MAX_EVAL_S`` (checked at every filter, test, call,
attribute and operator, which are all a template's per-item work); ``**`` is held to
``MAX_SIZE`` digits. Filters, tests and string methods that pad or reformat to a
width the template chooses (``center``, ``indent``, ``wordwrap``, ``format``,
``'x'.ljust(n)``, ``%`` on strings...) are not offered at all: ``parse`` refuses
them, so a definition using one is refused, as is a template with no names that
fails when evaluated (``{{ 'x' * 10**9 }}``).
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentos import inputs

NAMES = frozenset({"input", "steps", "item", "run"})
MAX_SIZE = 1_000_000  # characters or items one evaluation may make; digits a `**` may reach
MAX_EVAL_S = 1.0  # seconds one evaluation may run
STATIC_EVAL_S = 0.2  # seconds a template without names may take when a definition is checked
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)

# filters whose output is no larger than what they are given (or checked below)
FILTERS = frozenset({
    "abs", "attr", "batch", "capitalize", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "groupby", "int", "items",
    "join", "last", "length", "list", "lower", "map", "max", "min", "random", "reject",
    "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice",
    "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "urlencode", "wordcount"})
# string methods that pad, repeat or reformat to a size the template chooses
# (``join``/``replace``: the filters of those names, which are bounded)
REFUSED_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format",
                             "format_map", "join", "replace", "translate", "maketrans"})


class ExpressionError(ValueError):
    """A template that does not compile, or failed when evaluated."""


class _Exceeded(BaseException):
    """An evaluation went past its bounds. A BaseException so that no filter's own
    ``except Exception`` (``int``, ``default``...) takes it for a bad value."""


@dataclass
class _Budget:
    left: int  # characters or items it may still make
    deadline: float  # time.monotonic()

    def spend(self, size: int, what: str) -> None:
        self.left -= size
        if self.left < 0:
            raise _Exceeded(f"{what} would make more than {MAX_SIZE} characters or items "
                            "in one evaluation")

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Exceeded(f"took more than {self.limit_s():g} s")

    def limit_s(self) -> float:
        return _LIMIT.get()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "agentos_template_budget", default=None)
_LIMIT: contextvars.ContextVar[float] = contextvars.ContextVar(
    "agentos_template_limit", default=MAX_EVAL_S)


def _budget() -> _Budget:
    found = _BUDGET.get()
    if found is None:  # constant folding while a template compiles: the same bounds
        found = _Budget(MAX_SIZE, time.monotonic() + _LIMIT.get())
        _BUDGET.set(found)
    return found


def size_of(value: Any, cap: int = MAX_SIZE + 1) -> int:
    """Characters (or items) ``value`` stands for as text, counting every reference
    again (a list repeating one long string is as long as its copies); stops once
    past ``cap``."""
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            total += len(item) + 2
        elif kind is list or kind is tuple:
            try:  # a list of strings: counted in C
                total += sum(map(len, item)) + 2 * len(item) + 2
            except TypeError:
                total += 2
                stack.extend(item)
        elif kind is dict:
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is int and item.bit_length() > 64:
            total += item.bit_length() * 3 // 10
        else:
            total += 4
    return total


def _charge_text(value: Any) -> Any:
    """What ``{{ value }}`` or ``~`` is about to turn into text, charged first."""
    if type(value) is not str:
        budget = _budget()
        budget.spend(size_of(value, budget.left), "the text")
    return value


def _bounded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter (or test) that checks the clock first; those that can make new
    values of a size their arguments choose charge it first (``_charge``)."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    check = _CHARGES.get(name)

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        if check is not None:
            args = check(budget, args, skip, kwargs)
        return func(*args, **kwargs)

    return bounded


def _arg(args: tuple[Any, ...], skip: int, at: int, kwargs: dict[str, Any], key: str,
         default: Any = None) -> Any:
    return args[skip + at] if len(args) > skip + at else kwargs.get(key, default)


def _charge_pieces(budget: _Budget, args: tuple[Any, ...], skip: int,
                   kwargs: dict[str, Any]) -> tuple[Any, ...]:  # batch, slice
    count = _arg(args, skip, 1, kwargs, "linecount", kwargs.get("slices"))
    fill = _arg(args, skip, 2, kwargs, "fill_with")
    if isinstance(count, int):
        budget.spend(abs(count) * (1 + (size_of(fill) if fill is not None else 0)),
                     "batch or slice")
    return args


def _charge_join(budget: _Budget, args: tuple[Any, ...], skip: int,
                 kwargs: dict[str, Any]) -> tuple[Any, ...]:
    value = args[skip]
    if isinstance(value, str | Undefined) or value is None:
        return args
    value = list(value)  # a generator (``map``) read once, here
    sep = _arg(args, skip, 1, kwargs, "d", "")
    budget.spend(size_of(value, budget.left) + len(str(sep)) * len(value), "join")
    return (*args[:skip], value, *args[skip + 1:])


def _charge_replace(budget: _Budget, args: tuple[Any, ...], skip: int,
                    kwargs: dict[str, Any]) -> tuple[Any, ...]:
    value = args[skip]
    if isinstance(value, str):
        old = str(_arg(args, skip, 1, kwargs, "old", ""))
        new = str(_arg(args, skip, 2, kwargs, "new", ""))
        hits = value.count(old) if old else len(value) + 1
        budget.spend(hits * len(new), "replace")
    return args


def _charge_sum(budget: _Budget, args: tuple[Any, ...], skip: int,
                kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not isinstance(_arg(args, skip, 2, kwargs, "start", 0), int | float):
        raise _Exceeded("sum may only start from a number")
    return args


def _charge_tojson(budget: _Budget, args: tuple[Any, ...], skip: int,
                   kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) > skip + 1 or kwargs:
        raise _Exceeded("tojson takes no indent here")
    _charge_text(args[skip])
    return args


_CHARGES: dict[str, Callable[[_Budget, tuple[Any, ...], int, dict[str, Any]],
                            tuple[Any, ...]]] = {
    "batch": _charge_pieces, "slice": _charge_pieces, "join": _charge_join,
    "replace": _charge_replace, "sum": _charge_sum, "tojson": _charge_tojson,
    "string": lambda budget, args, skip, kwargs: (_charge_text(args[skip]), args)[1],
    "pprint": lambda budget, args, skip, kwargs: (_charge_text(args[skip]), args)[1]}


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # ``a ~ b`` through the environment, which charges what it makes
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in REFUSED_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget().tick()
        if isinstance(obj, str) and attribute in REFUSED_METHODS:
            return self.unsafe_undefined(obj, attribute)
        # the data is JSON: ``input.items`` is the key "items", not dict.items
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget().tick()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any
             ) -> Any:
        _budget().tick()
        return super().call(__context, __obj, *args, **kwargs)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        texts = [str(_charge_text(p)) for p in parts]
        _budget().spend(sum(map(len, texts)), "~")
        return "".join(texts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.tick()
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and abs(left) > 1 and right * max(abs(left).bit_length(), 1) > MAX_SIZE:
                raise _Exceeded("** would make a number too large")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int) \
                    and left.bit_length() + right.bit_length() > MAX_SIZE:
                raise _Exceeded("* would make a number too large")
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) \
                        and times > 0:
                    budget.spend(size_of(seq, budget.left // times + 1) * times, "*")
        elif operator == "+" and isinstance(left, str | list | tuple) \
                and isinstance(right, str | list | tuple):
            budget.spend(size_of(left, budget.left) + size_of(right, budget.left), "+")
        elif operator == "%" and isinstance(left, str):
            raise _Exceeded("% formatting of strings is not offered; join with ~")
        return super().call_binop(context, operator, left, right)


_env = _Environment(undefined=StrictUndefined, autoescape=False, finalize=_charge_text)
_env.globals.clear()  # templates see only their four names
_env.filters = {name: _bounded(name, f) for name, f in _env.filters.items()
                if name in FILTERS}
_env.tests = {name: _bounded(name, cast(Callable[..., Any], f))
              for name, f in _env.tests.items()}


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
    the engine's message when it does not compile, uses a filter, test or string
    method that is not offered, or (with no names in it: its value is fixed) fails
    when evaluated, ``{{ 'x' * 10**9 }}``."""
    if "{%" in template:
        raise ExpressionError("only {{ expressions }} are allowed, not {% statements %}")
    try:
        tree = _env.parse(template)
    except TemplateError as exc:
        raise ExpressionError(f"does not compile: {exc}") from None
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        offered = _env.filters if isinstance(node, nodes.Filter) else _env.tests
        if node.name not in offered:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            raise ExpressionError(f"the {kind} {node.name!r} is not offered in templates"
                                  + (" (it pads or wraps text to a size the template "
                                     "chooses)" if node.name in _WIDTH_FILTERS else ""))
    for attr in tree.find_all(nodes.Getattr):
        if attr.attr in REFUSED_METHODS:
            raise ExpressionError(f"the string method {attr.attr!r} is not offered in "
                                  "templates (use the join and replace filters)")
    names = frozenset(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load")
    steps: set[str] = set()
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == "steps":
            steps.add(attr.attr)
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "steps" \
                and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            steps.add(item.arg.value)
    if not names:
        token = _LIMIT.set(STATIC_EVAL_S)
        try:
            _evaluate(template, {})
        finally:
            _LIMIT.reset(token)
    return Parsed(names, frozenset(steps))


_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "format", "xmlattr", "urlize",
                            "pprint"})


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


@functools.lru_cache(maxsize=4096)
def _compiled(template: str) -> tuple[bool, Any]:
    """(a lone expression?, its compiled form); compiled once per text."""
    single = _SINGLE.match(template)
    if single is not None and "{{" not in single.group("expr"):
        return True, _env.compile_expression(single.group("expr"), undefined_to_none=False)
    return False, _env.from_string(template)


def _evaluate(template: str, scope: dict[str, Any]) -> Any:
    budget = _Budget(MAX_SIZE, time.monotonic() + _LIMIT.get())
    token = _BUDGET.set(budget)
    try:
        lone, compiled = _compiled(template)
        if lone:
            value = compiled(**scope)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            _charge_text(value)  # its copy, its checks, its JSON are as large
            return _plain(value)
        parts = []
        for part in compiled.generate(**scope):
            budget.spend(len(part), "the text")
            parts.append(part)
        return "".join(parts)
    except ExpressionError:
        raise
    except _Exceeded as exc:
        raise ExpressionError(f"{_short(template)}: {exc}") from None
    except Exception as exc:  # the sandbox's SecurityError, UndefinedError, TypeError...
        raise ExpressionError(f"{_short(template)}: {type(exc).__name__}: {exc}") from None
    finally:
        _BUDGET.reset(token)


def _short(template: str) -> str:
    return repr(template if len(template) <= 200 else template[:197] + "...")


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
