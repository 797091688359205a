"""The agent definition document (SPEC §2.1): its schema and its validation.

A definition is a flat YAML or JSON mapping; only ``name``, ``version`` and
``handler`` are required. Validation is strict (no type coercion, unknown
fields are errors) so that export of an import gives back the same document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from agentos import patterns, semver
from agentos.documents import Document, validated
from agentos.inputs import format_path

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
_TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$")
_PLACEHOLDER = re.compile(r"\{input(\.[A-Za-z0-9_-]+)+\}")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

Text = Annotated[str, Field(min_length=1, max_length=10_000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Slug = Annotated[str, Field(pattern=NAME_PATTERN)]
Priority = Annotated[int, Field(ge=1, le=10)]
Scalar = str | int | float | bool | None
# numbers are int | float so that an int stays an int and export equals import
Seconds = Annotated[int, Field(gt=0, le=7 * 86_400)] | Annotated[float, Field(gt=0, le=7 * 86_400)]
Multiplier = Annotated[int, Field(ge=1, le=100)] | Annotated[float, Field(ge=1, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelRef(_Strict):
    """The LLM an agent uses: provider, model name and call parameters."""

    provider: ShortText
    name: ShortText
    params: dict[str, Any] = Field(default_factory=dict)


class PythonHandler(_Strict):
    type: Literal["python"]
    target: str  # "package.module:callable"

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not _TARGET.match(v):
            raise ValueError("target must be 'module:callable', e.g. 'mypkg.qa:manage'")
        return v


class CommandHandler(_Strict):
    type: Literal["command"]
    argv: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class HttpHandler(_Strict):
    type: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+([/?#]\S*)?$", max_length=2000)]
    headers: dict[str, str] = Field(default_factory=dict)


class LlmHandler(_Strict):
    type: Literal["llm"]
    prompt: Text  # a template filled from the task input: "Summarise {input.text}"
    system: Text | None = None
    model: ModelRef | None = None  # defaults to the agent's model
    response_format: Literal["text", "json"] = "text"


Handler = Annotated[
    PythonHandler | CommandHandler | HttpHandler | LlmHandler, Field(discriminator="type")
]


# what each handler type takes, said after an unknown field of one
HANDLER_FIELDS = {
    get_args(kind.model_fields["type"].annotation)[0]:
    f"a handler of type {get_args(kind.model_fields['type'].annotation)[0]} takes "
    + ", ".join(f for f in kind.model_fields if f != "type")
    for kind in (PythonHandler, CommandHandler, HttpHandler, LlmHandler)}


class Goal(_Strict):
    description: Text
    success_criteria: Text | None = None


class Trigger(_Strict):
    """Run this agent when an event whose type matches ``event`` and whose payload
    matches ``filter`` (equality, or membership when the value is a list) arrives."""

    event: str
    filter: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    priority: Priority = 5
    input: dict[str, Any] = Field(default_factory=dict)
    capability: str | None = None  # routed only while this capability is enabled

    @field_validator("event")
    @classmethod
    def _event(cls, v: str) -> str:
        patterns.check_event_glob(v)
        return v

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not _FILTER_KEY.match(key):
                raise ValueError(f"filter key {key!r} must be a payload key or dotted path")
        return v


class Capability(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")]
    version: int | str = 1
    enabled: StrictBool = True
    description: Text | None = None


class SubAgent(_Strict):
    name: Slug
    version: str = "*"

    @field_validator("version")
    @classmethod
    def _range(cls, v: str) -> str:
        semver.parse_range(v)
        return v


class Permissions(_Strict):
    """What a task of the agent may do. ``emit``, when declared, lists the event-type
    globs ``ctx.emit`` accepts (``[]``: none); left out, any type may be emitted."""

    lock: list[str] = Field(default_factory=list)
    emit: list[str] = Field(default_factory=list)
    call_sub_agents: StrictBool = False

    @field_validator("lock")
    @classmethod
    def _lock(cls, v: list[str]) -> list[str]:
        for p in v:
            patterns.check_resource_glob(p)
        return v

    @field_validator("emit")
    @classmethod
    def _emit(cls, v: list[str]) -> list[str]:
        for p in v:
            patterns.check_event_glob(p)
        return v


class Backoff(_Strict):
    initial_s: Seconds = 1.0
    max_s: Seconds = 300.0
    multiplier: Multiplier = 2.0
    jitter: StrictBool = True


class Limits(_Strict):
    timeout_s: Seconds | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = None
    backoff: Backoff | None = None


ConfigType = Literal["string", "integer", "float", "boolean", "json"]


Bound = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | float


class ConfigItem(_Strict):
    """One key of an agent's typed config: its type, default ``value``, and optional
    bounds every value (the default and a live override) must keep: ``min``/``max``
    for numbers (a string's length), ``choices`` for any type."""

    type: ConfigType
    value: Any = None
    description: Text | None = None
    min: Bound | None = None
    max: Bound | None = None
    choices: Annotated[list[Any], Field(min_length=1, max_length=1000)] | None = None


def config_value_error(kind: ConfigType, value: Any) -> str | None:
    """Why ``value`` is not a ``kind`` config value, or None when it is."""
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "json": True,
    }[kind]
    return None if ok else f"value must be of type {kind}"


def config_problem(item: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` may not be the value of the declared config key ``item`` (its
    type, then its bounds), or None when it may."""
    kind = item["type"]
    if problem := config_value_error(kind, value):
        return problem
    measured = len(value) if kind == "string" else value
    if kind in ("string", "integer", "float"):
        low, high = item.get("min"), item.get("max")
        what = "length" if kind == "string" else "value"
        if low is not None and measured < low:
            return f"{what} must be at least {low}"
        if high is not None and measured > high:
            return f"{what} must be at most {high}"
    choices = item.get("choices")
    if choices is not None and not any(_same_value(value, c) for c in choices):
        return f"value must be one of {choices!r}"
    return None


def _same_value(a: Any, b: Any) -> bool:
    # true is not 1 here either
    return type(a) is type(b) and bool(a == b) if isinstance(a, bool) or isinstance(b, bool) \
        else bool(a == b)


class AgentSpec(_Strict):
    """One version of one agent, exactly as its author wrote it."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())

    name: Slug
    version: str
    display_name: ShortText | None = None
    description: Text | None = None
    role: Text | None = None
    owner: ShortText | None = None
    tags: list[str] = Field(default_factory=list)
    model: ModelRef | None = None
    # a model of the model registry the worker resolves into ctx.model: NAME (the
    # version deployed) or NAME@VERSION
    model_ref: Annotated[str, Field(
        pattern=r"^[a-z][a-z0-9_.-]{0,62}(@[A-Za-z0-9][A-Za-z0-9_.+-]{0,63})?$")] | None = None
    handler: Handler
    goals: list[Goal] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    sub_agents: list[SubAgent] = Field(default_factory=list)
    permissions: Permissions = Field(default_factory=Permissions)
    resources: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    config: dict[str, ConfigItem] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        semver.parse(v)
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for tag in v:
            if not _TAG.match(tag):
                raise ValueError(f"tag {tag!r} must be 1-64 letters, digits or '_.:/-'")
        return v

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: list[str]) -> list[str]:
        for template in v:
            if not patterns.RESOURCE_ID.fullmatch(_PLACEHOLDER.sub("x", template)):
                raise ValueError(
                    f"resource {template!r} must be TYPE:NAME, optionally with "
                    "{input.field} placeholders"
                )
        return v

    @field_validator("config")
    @classmethod
    def _config_keys(cls, v: dict[str, ConfigItem]) -> dict[str, ConfigItem]:
        for key in v:
            if not _KEY.match(key):
                raise ValueError(f"config key {key!r} must start with a letter or '_'")
        return v

    def to_document(self) -> dict[str, Any]:
        """The document as written: only the fields its author set."""
        return self.model_dump(mode="json", exclude_unset=True)

    def capability(self, name: str) -> Capability | None:
        return next((c for c in self.capabilities if c.name == name), None)


def _cross_field_errors(doc: Document) -> list[dict[str, Any]]:
    """Rules that span fields, checked on the raw mapping so that they are reported
    together with the per-field errors (what is malformed here is Pydantic's to report)."""
    data: dict[str, Any] = doc.data
    errors: list[dict[str, Any]] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        errors.append({"path": format_path(path), "message": message, "line": doc.line(path)})

    def items(field_name: str) -> list[tuple[int, dict[str, Any]]]:
        value = data.get(field_name)
        return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] \
            if isinstance(value, list) else []

    for field_name in ("capabilities", "sub_agents"):
        seen: set[Any] = set()
        for i, item in items(field_name):
            name = item.get("name")
            if not isinstance(name, str):
                continue  # Pydantic reports it (a list here is not even hashable)
            if name in seen:
                add((field_name, i, "name"), f"duplicate name {name!r}")
            seen.add(name)
    tags = data.get("tags")
    if isinstance(tags, list):
        for i, tag in enumerate(tags):
            if isinstance(tag, str) and tag in tags[:i]:
                add(("tags", i), f"duplicate tag {tag!r}")
    declared = {name for _, c in items("capabilities") if isinstance(name := c.get("name"), str)}
    for i, trigger in items("triggers"):
        needed = trigger.get("capability")
        if isinstance(needed, str) and needed not in declared:
            add(("triggers", i, "capability"),
                f"capability {needed!r} is not declared in capabilities")
    config = data.get("config")
    for key, item in config.items() if isinstance(config, dict) else ():
        if isinstance(item, dict) and item.get("type") in get_args(ConfigType):
            low, high = item.get("min"), item.get("max")
            bounds = [b for b in (low, high) if b is not None]
            if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds) \
                    or not isinstance(item.get("choices") or [], list):
                continue  # Pydantic reports it
            if low is not None and high is not None and low > high:
                add(("config", key, "min"), "min must not be above max")
            elif item.get("value") is not None and (problem := config_problem(item,
                                                                             item["value"])):
                add(("config", key, "value"), problem)
    handler = data.get("handler")
    if isinstance(handler, dict) and handler.get("type") == "llm" \
            and handler.get("model") is None and data.get("model") is None:
        add(("handler", "model"), "an llm handler needs a model (here or in the agent's model)")
    return errors


def validate(doc: Document) -> AgentSpec:
    """Validate one document; raise ``ValidationFailed`` listing every error."""
    return validated(doc, AgentSpec, "agent definition", _cross_field_errors, HANDLER_FIELDS)


def from_object(data: Any) -> AgentSpec:
    """Validate a definition that arrived as JSON (no source lines)."""
    return validate(Document(data))
