"""Workflow definitions: validation with every error at once, templates in the sandbox,
the state tables walked exhaustively, the planner's pure decisions."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from agentos import documents
from agentos.errors import Conflict, ValidationFailed
from agentos.workflows import expressions, plan, spec, states
from agentos.workflows.plan import RunFacts, StepState
from agentos.workflows.states import RunStatus, StepStatus

GOOD = """\
name: device-regression
version: 1.0.0
input_schema: {type: object, required: [devices], properties: {devices: {type: array}}}
steps:
  - id: plan
    agent: qa-manager
    input: {devices: "{{ input.devices }}"}
  - id: explore
    agent: explorer
    for_each: "{{ steps.plan.output.targets }}"
    max_parallel: 4
    input: {device_id: "{{ item.device_id }}"}
    depends_on: [plan]
  - id: approve
    type: approval
    role: operator
    timeout_s: 86400
    on_timeout: reject
    depends_on: [explore]
  - id: execute
    agent: executor
    when: "{{ steps.approve.output.approved }}"
    input: {plan: "{{ steps.plan.output }}"}
    depends_on: [approve]
    retry: {max_retries: 5}
"""


def validate(text: str) -> spec.WorkflowSpec:
    [doc] = documents.parse_yaml(text)
    return spec.validate(doc)


def errors(text: str) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as caught:
        validate(text)
    found: list[dict[str, Any]] = caught.value.details["errors"]
    return found


def test_the_issue_example_is_valid_and_round_trips() -> None:
    found = validate(GOOD)
    assert found.order() == ["plan", "explore", "approve", "execute"]
    assert found.leaves() == ["execute"]
    assert found.to_document()["steps"][1] == {
        "id": "explore", "agent": "explorer", "for_each": "{{ steps.plan.output.targets }}",
        "max_parallel": 4, "input": {"device_id": "{{ item.device_id }}"},
        "depends_on": ["plan"]}


def test_every_error_at_once_with_path_and_line() -> None:
    bad = """\
name: bad
version: 1.0.0
input_schema: {type: objekt}
steps:
  - id: a
    agent: x
    input: {v: "{{ steps.c.output }}", w: "{{ nope }}", i: "{{ item }}"}
    depends_on: [c]
  - id: b
    agent: x
    depends_on: [ghost, b]
    input: {t: "{{ input.x | }}"}
  - id: c
    agent: x
    depends_on: [a]
  - id: c
    type: approval
    agent: x
  - id: d
    type: wait_event
  - id: e
    type: workflow
    workflow: bad
  - id: f
    agent: x
    input: {late: "{{ steps.b.output }}"}
    surprise: 1
"""
    got = {(e["path"], e["line"]): e["message"] for e in errors(bad)}
    assert got[("steps[1].depends_on[0]", 11)] == "unknown step 'ghost'"
    assert got[("steps[1].depends_on[1]", 11)] == "a step cannot depend on itself"
    assert got[("steps[3].id", 16)] == "duplicate step id 'c'"
    assert got[("steps[3].agent", 18)] == "agent does not apply to a approval step"
    assert got[("steps[4].event", 19)] == "a wait_event step needs event"
    assert got[("steps[5].workflow", 23)] == (
        "a workflow cannot run itself as a sub-workflow")
    assert "cycle: a -> c -> a" in got[("steps[0].depends_on", 8)]
    assert "does not compile" in got[("steps[1].input.t", 12)]
    assert "templates see input, steps, item and run" in got[("steps[0].input.w", 7)]
    assert got[("steps[0].input.i", 7)] == "item exists only in the input of a for_each step"
    assert got[("steps[6].surprise", 27)] == "unknown field"
    assert any(p.startswith("input_schema") and "not a JSON Schema" in m
               for (p, _), m in got.items())


def test_statements_are_refused_and_unknown_steps_named() -> None:
    found = errors("""\
name: w
version: 1.0.0
steps:
  - id: a
    agent: x
    input: {v: "{% for x in input %}{{ x }}{% endfor %}", u: "{{ steps.zz.output }}"}
  - id: b
    agent: x
    input: {late: "{{ steps.c.output }}"}
  - id: c
    agent: x
""")
    messages = [e["message"] for e in found]
    assert any("not {% statements %}" in m for m in messages)
    assert "template reads unknown step 'zz'" in messages
    assert any("step 'c', which this step does not come after" in m for m in messages)


def test_not_a_mapping_and_bad_fields() -> None:
    assert errors("- 1\n- 2\n")[0]["message"].startswith("a workflow definition must be")
    found = errors("name: Bad Name\nversion: one\nsteps: []\n")
    assert {e["path"] for e in found} == {"name", "version", "steps"}


def test_input_errors_name_the_field() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    assert spec.input_errors(schema, {"n": 1}) == []
    assert spec.input_errors(schema, {"n": "x"})[0]["path"] == "input.n"
    assert "required" in spec.input_errors(schema, {})[0]["message"]
    assert spec.input_errors({}, "anything") == []


# ---------------------------------------------------------------- templates


def test_a_lone_expression_gives_the_value_itself() -> None:
    scope = {"input": {"devices": ["a", "b"], "n": 2}, "steps": {}, "run": {"id": "r1"}}
    assert expressions.render({"d": "{{ input.devices }}", "n": "{{ input.n * 3 }}",
                               "s": "run {{ run.id }}", "k": 7}, scope) == {
        "d": ["a", "b"], "n": 6, "s": "run r1", "k": 7}
    assert expressions.render(["{{ input.n > 1 }}"], scope) == [True]
    # keys win over dict methods: the data is JSON
    assert expressions.evaluate("{{ input.items }}", {"input": {"items": [1, 2]}}) == [1, 2]
    assert expressions.evaluate("{{ input.keys() | list }}", {"input": {"a": 1}}) == ["a"]


@pytest.mark.parametrize("template", [
    "{{ input.missing }}",  # undefined: an error, not an empty string
    "{{ ''.__class__.__mro__ }}",  # the sandbox
    "{{ 'x' * 100000000 }}",
    "{{ 9 ** 99999999 }}",
    "{{ range(10000000) | list }}",
    "{{ 'a\\u0000b' }}",  # a NUL no database stores
    "x{{ 'a\\u0000b' }}",
    "{{ 2 ** 70 }}",  # past 64 bits
])
def test_unsafe_or_undefined_templates_fail(template: str) -> None:
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate(template, {"input": {}, "steps": {}, "run": {}})


@pytest.mark.parametrize(("template", "says"), [
    ("{{ 'x'|center(10**9) }}", "No filter named 'center'"),
    ("{{ 'x'.ljust(10**9) }}", "'ljust' of 'str' object is unsafe"),
    ("{{ ('x'|attr('zfill'))(10**9) }}", "'zfill' of 'str' object is unsafe"),
    ("{{ 'x'.format() }}", "'format' of 'str' object is unsafe"),
    ("{{ '%1000000000d' % 1 }}", "% formatting of strings"),
    ("{{ ['x' * 999999] * 1000 }}", "* would make more than"),
    ("{{ input.s|replace('', input.s) }}", "replace would make more than"),
    ("{{ input.l|batch(10**9, 'x')|list }}", "batch or slice would make more than"),
    ("{{ input.l|slice(10**9)|list }}", "batch or slice would make more than"),
    ("{{ [input.s, input.s, input.s]|join('-') }}", "join would make more than"),
    ("{{ [input.s, input.s, input.s]|string }}", "the text would make more than"),
    ("{{ [input.s, input.s, input.s] }}", "the text would make more than"),
    ("x{{ [input.s, input.s, input.s] }}", "the text would make more than"),
    ("{{ input.s ~ input.s ~ input.s }}", "~ would make more than"),
    ("{{ input.l + input.l + input.l }}", "+ would make more than"),
    ("{{ input.l|tojson(indent=100000) }}", "tojson takes no indent"),
    ("{{ [input.l]|sum(start=[]) }}", "sum may only start from a number"),
    ("{{ input.l|select('in', input.l)|list }}", "took more than 1 s"),
])
def test_templates_are_bounded_in_size_and_time(template: str, says: str) -> None:
    """Each would make gigabytes or run for minutes unbounded; each fails within
    about the time bound, saying which bound."""
    scope = {"input": {"s": "x" * 400_000, "l": list(range(400_000))}}
    began = time.monotonic()
    with pytest.raises(expressions.ExpressionError) as bad:
        expressions.evaluate(template, scope)
    assert says in str(bad.value) and time.monotonic() - began < 5


@pytest.mark.parametrize(("template", "says"), [
    ("{{ 'x'|center(80) }}", "the filter 'center' is not offered"),
    ("{{ input.s|wordwrap(10) }}", "the filter 'wordwrap' is not offered"),
    ("{{ input.s.ljust(3) }}", "the string method 'ljust' is not offered"),
    ("{{ 'x' * 10**9 }}", "* would make more than"),
])
def test_definitions_refuse_unbounded_templates(template: str, says: str) -> None:
    with pytest.raises(expressions.ExpressionError, match=re.escape(says)):
        expressions.parse(template)
    assert expressions.parse("{{ input.s|join(',') ~ 'x' * 3 }}").names == {"input"}


def test_parse_names_the_steps_read() -> None:
    parsed = expressions.parse("{{ steps.a.output.x + steps['b'].output }}")
    assert parsed.steps == {"a", "b"} and parsed.names == {"steps"}


# --------------------------------------------------------------- state tables


@pytest.mark.parametrize("action", list(states.RUN_TRANSITIONS))
@pytest.mark.parametrize("current", list(RunStatus))
def test_run_transitions_walked(current: RunStatus, action: str) -> None:
    sources, target = states.RUN_TRANSITIONS[action]
    if current in sources:
        assert states.run_transition(current, action, "r") is target
    else:
        with pytest.raises(Conflict):
            states.run_transition(current, action, "r")


@pytest.mark.parametrize("action", list(states.STEP_TRANSITIONS))
@pytest.mark.parametrize("current", list(StepStatus))
def test_step_transitions_walked(current: StepStatus, action: str) -> None:
    sources, target = states.STEP_TRANSITIONS[action]
    assert states.step_transition(current, action) is (target if current in sources else None)


def test_final_states() -> None:
    assert {s for s in RunStatus if s.final} == {RunStatus.SUCCEEDED, RunStatus.FAILED,
                                                RunStatus.CANCELLED}
    assert {s for s in StepStatus if not s.final} == {StepStatus.PENDING, StepStatus.RUNNING}


# -------------------------------------------------------------------- planner


def _states(found: spec.WorkflowSpec, **given: StepStatus) -> dict[str, StepState]:
    return {s.id: StepState(s.id, s.type, given.get(s.id, StepStatus.PENDING))
            for s in found.steps}


FACTS = RunFacts("r1", "device-regression", "1.0.0", "c1", {"devices": []})


def test_moves_start_only_what_is_ready_and_skip_through() -> None:
    found = validate(GOOD)
    steps = _states(found)
    assert [(m.action, m.step) for m in plan.moves(found, steps, FACTS)] == [("start", "plan")]
    steps = _states(found, plan=StepStatus.SUCCEEDED, explore=StepStatus.SUCCEEDED,
                    approve=StepStatus.SUCCEEDED)
    steps["approve"].output = {"approved": False}
    [move] = plan.moves(found, steps, FACTS)
    assert (move.action, move.step) == ("skip", "execute")
    assert plan.outcome(found, steps) is RunStatus.SUCCEEDED


def test_a_failed_step_fails_the_run_and_holds_what_follows() -> None:
    found = validate(GOOD)
    steps = _states(found, plan=StepStatus.FAILED)
    assert plan.moves(found, steps, FACTS) == []
    assert plan.outcome(found, steps) is RunStatus.FAILED


@pytest.mark.parametrize(("args", "start", "done"), [
    ((5, 0, 0, 0, 2, False), range(0, 2), None),
    ((5, 2, 1, 0, 2, False), range(2, 3), None),
    ((5, 5, 4, 0, 2, False), range(5, 5), None),
    ((5, 5, 5, 0, 2, False), range(0), StepStatus.SUCCEEDED),
    ((5, 3, 1, 1, 2, False), range(0), StepStatus.FAILED),
    ((5, 3, 2, 1, 2, True), range(3, 4), None),
    ((5, 5, 5, 2, 2, True), range(0), StepStatus.SUCCEEDED),
    ((0, 0, 0, 0, 1, False), range(0), StepStatus.SUCCEEDED),
])
def test_fan_out(args: tuple[int, int, int, int, int, bool], start: range,
                 done: StepStatus | None) -> None:
    decided = plan.fan_out(*args)
    assert (list(decided.start), decided.done) == (list(start), done)
