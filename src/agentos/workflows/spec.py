"""The workflow definition document (SPEC §2.8): its schema and its validation.

    name: device-regression
    version: 1.0.0
    input_schema: {type: object, required: [devices]}
    steps:
      - id: plan
        agent: qa-manager
        input: {devices: "{{ input.devices }}"}
      - id: approve
        type: approval
        role: operator
        depends_on: [plan]

A step is an agent task (the default ``type``), an ``approval``, a ``wait_event`` or a
``workflow`` (a sub-run). Validation is strict, like agents' (``agent_spec``), and
lists every error at once with its path and YAML line: unknown fields, fields of
another step type, duplicate ids, ``depends_on`` naming an unknown step, cycles,
templates that do not compile or read an unknown name or a step this one does not
come after, an ``input_schema`` that is no JSON Schema. Whether the agents and
sub-workflows it names exist is the registry's to check (``definitions``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from agentos import patterns, semver
from agentos.agent_spec import NAME_PATTERN, Priority, Seconds, ShortText, Text
from agentos.documents import Document, validated
from agentos.inputs import format_path
from agentos.workflows import expressions

STEP_ID = r"^[a-z][a-z0-9_]{0,62}$"  # a Jinja name: steps.<id>.output
MAX_STEPS = 200
MAX_PARALLEL = 1000  # fan-out children running at once
StepType = Literal["agent", "approval", "wait_event", "workflow"]
RoleName = Literal["viewer", "operator", "admin"]
OnTimeout = Literal["approve", "reject", "fail"]
Path = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Retry(_Strict):
    """Overrides of the agent's own limits for this step's tasks."""

    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    timeout_s: Seconds | None = None


# the fields each step type may have besides id, type, depends_on, when
FIELDS: dict[str, frozenset[str]] = {
    "agent": frozenset({"agent", "version", "input", "for_each", "max_parallel",
                        "continue_on_error", "retry", "priority"}),
    "approval": frozenset({"title", "details", "role", "timeout_s", "on_timeout"}),
    "wait_event": frozenset({"event", "filter", "timeout_s"}),
    "workflow": frozenset({"workflow", "version", "input"}),
}
REQUIRED: dict[str, str | None] = {"agent": "agent", "approval": None, "wait_event": "event",
                                   "workflow": "workflow"}


class Step(_Strict):
    """One step; which fields apply depends on ``type`` (``FIELDS``)."""

    id: Annotated[str, Field(pattern=STEP_ID)]
    type: StepType = "agent"
    depends_on: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list)
    when: str | StrictBool | None = None  # a template; falsy: the step is skipped
    # agent and workflow steps
    agent: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    workflow: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None  # pinned
    input: dict[str, Any] | None = None
    for_each: str | list[Any] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=MAX_PARALLEL)] | None = None
    continue_on_error: StrictBool | None = None
    retry: Retry | None = None
    priority: Priority | None = None  # default: the run's
    # approval steps
    title: ShortText | None = None
    details: dict[str, Any] | None = None
    role: RoleName | None = None
    on_timeout: OnTimeout | None = None
    # approval and wait_event steps
    timeout_s: Seconds | None = None
    # wait_event steps: the event's type glob and payload filter, as triggers have
    event: str | None = None
    filter: dict[str, Any] | None = None

    @field_validator("event")
    @classmethod
    def _event(cls, v: str | None) -> str | None:
        if v is not None:
            patterns.check_event_glob(v)
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None:
            semver.parse(v)
        return v


class WorkflowSpec(_Strict):
    """One version of one workflow, exactly as its author wrote it."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    version: str
    description: Text | None = None
    input_schema: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = 5  # of the run's tasks, unless the run or a step says otherwise
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    output: Any = None  # a template of the run's output; default: the last steps' outputs
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        semver.parse(v)
        return v

    def to_document(self) -> dict[str, Any]:
        """The document as written: only the fields its author set."""
        return self.model_dump(mode="json", exclude_unset=True)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def order(self) -> list[str]:
        """Step ids in an order where each comes after what it depends on."""
        return topological(self.steps)

    def leaves(self) -> list[str]:
        """Steps no other step depends on."""
        needed = {d for s in self.steps for d in s.depends_on}
        return [s.id for s in self.steps if s.id not in needed]


def topological(steps: list[Step]) -> list[str]:
    """Kahn's order, stable in the document's order (a valid document has no cycle)."""
    remaining = {s.id: set(s.depends_on) for s in steps}
    out: list[str] = []
    while remaining:
        ready = [i for i, deps in remaining.items() if not deps - set(out)]
        if not ready:
            raise ValueError("cycle")
        out.append(ready[0])
        del remaining[ready[0]]
    return out


def ancestors(steps: dict[str, list[str]], step_id: str) -> set[str]:
    """Every step ``step_id`` comes after, directly or through others."""
    seen: set[str] = set()
    todo = list(steps.get(step_id, []))
    while todo:
        current = todo.pop()
        if current not in seen and current in steps:
            seen.add(current)
            todo.extend(steps[current])
    return seen


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of ``graph`` (ids in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def _template_places(step: dict[str, Any]) -> Iterator[tuple[Path, str, bool]]:
    """(path inside the step, template, whether ``item`` may appear) of every template."""
    fan_out = step.get("for_each") is not None
    for field in ("input", "details", "filter"):
        for path, text in expressions.strings(step.get(field)):
            yield (field, *path), text, fan_out and field == "input"
    for field in ("when", "for_each", "title"):
        for path, text in expressions.strings(step.get(field)):
            yield (field, *path), text, False


def _cross_field_errors(doc: Document) -> list[dict[str, Any]]:
    """Rules across fields and steps, on the raw mapping, reported with the field errors."""
    data: dict[str, Any] = doc.data
    errors: list[dict[str, Any]] = []

    def add(path: Path, message: str) -> None:
        errors.append({"path": format_path(path), "message": message, "line": doc.line(path)})

    raw_steps = data.get("steps")
    steps = [(i, s) for i, s in enumerate(raw_steps) if isinstance(s, dict)] \
        if isinstance(raw_steps, list) else []
    ids: dict[str, int] = {}
    for i, step in steps:
        sid = step.get("id")
        if isinstance(sid, str):
            if sid in ids:
                add(("steps", i, "id"), f"duplicate step id {sid!r}")
            else:
                ids[sid] = i
    graph: dict[str, list[str]] = {}
    for i, step in steps:
        sid = step.get("id")
        kind = step.get("type", "agent")
        deps = step.get("depends_on")
        deps = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
        for n, dep in enumerate(deps):
            if dep == sid:
                add(("steps", i, "depends_on", n), "a step cannot depend on itself")
            elif dep not in ids:
                add(("steps", i, "depends_on", n), f"unknown step {dep!r}")
        if isinstance(sid, str) and ids.get(sid) == i:
            graph[sid] = [d for d in deps if d in ids and d != sid]
        if kind in FIELDS:
            for key in step:
                if key in _ALL_TYPED and key not in FIELDS[kind]:
                    add(("steps", i, key), f"{key} does not apply to a {kind} step")
            needed = REQUIRED[kind]
            if needed is not None and step.get(needed) is None:
                add(("steps", i, needed), f"a {kind} step needs {needed}")
        if kind == "workflow" and step.get("workflow") == data.get("name"):
            add(("steps", i, "workflow"), "a workflow cannot run itself as a sub-workflow")
    cycle = _cycle(graph)
    if cycle is not None:
        add(("steps", ids[cycle[0]], "depends_on"),
            "depends_on makes a cycle: " + " -> ".join(cycle))
    for i, step in steps:
        sid = step.get("id")
        before = ancestors(graph, sid) if cycle is None and isinstance(sid, str) else None
        for path, text, item_ok in _template_places(step):
            where = ("steps", i, *path)
            _check_template(text, where, item_ok, ids, before, add)
    for path, text in expressions.strings(data.get("output")):
        _check_template(text, ("output", *path), False, ids, None, add)
    schema = data.get("input_schema")
    if isinstance(schema, dict):
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            inner = format_path(("input_schema", *exc.absolute_path))
            errors.append({"path": inner, "message": f"not a JSON Schema: {exc.message}",
                           "line": doc.line(("input_schema", *exc.absolute_path))})
    return errors


_ALL_TYPED = frozenset().union(*FIELDS.values())


def _check_template(text: str, where: Path, item_ok: bool, ids: dict[str, int],
                    before: set[str] | None, add: Any) -> None:
    try:
        parsed = expressions.parse(text)
    except expressions.ExpressionError as exc:
        add(where, f"template {exc}")
        return
    for name in sorted(parsed.names - expressions.NAMES):
        add(where, f"template names {name!r}; templates see input, steps, item and run")
    if "item" in parsed.names and not item_ok:
        add(where, "item exists only in the input of a for_each step")
    for ref in sorted(parsed.steps):
        if ref not in ids:
            add(where, f"template reads unknown step {ref!r}")
        elif before is not None and ref not in before:
            add(where, f"template reads step {ref!r}, which this step does not come after "
                       "(add it to depends_on)")


def validate(doc: Document) -> WorkflowSpec:
    """Validate one document; raise ``ValidationFailed`` listing every error."""
    return validated(doc, WorkflowSpec, "workflow definition", _cross_field_errors)


def from_object(data: Any) -> WorkflowSpec:
    """Validate a definition that arrived as JSON (no source lines)."""
    return validate(Document(data))


def input_errors(schema: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    """Every way ``value`` breaks ``schema`` (JSON Schema), each with its path."""
    if not schema:
        return []
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [{"path": format_path(("input", *e.absolute_path)), "message": e.message}
            for e in sorted(validator.iter_errors(value),
                            key=lambda e: [str(p) for p in e.absolute_path])]
