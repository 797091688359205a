from pathlib import Path
from typing import Any

import pytest
import yaml

from agentos import agent_spec, documents, templates
from agentos.errors import ValidationFailed

EXAMPLE = (Path(__file__).parent.parent / "data" / "qa-manager.yaml").read_text()


def errors_of(text: str) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as info:
        for doc in documents.parse_yaml(text):
            agent_spec.validate(doc)
    errors: list[dict[str, Any]] = info.value.details["errors"]
    return errors


def test_the_issue_example_imports_as_is_and_round_trips() -> None:
    spec = agent_spec.validate(documents.parse_yaml(EXAMPLE)[0])
    assert spec.name == "qa-manager"
    assert spec.triggers[0].filter == {"severity": ["high", "critical"]}
    assert spec.to_document() == yaml.safe_load(EXAMPLE)


def test_minimal_definition() -> None:
    spec = agent_spec.from_object(
        {"name": "a", "version": "0.1.0", "handler": {"type": "command", "argv": ["true"]}})
    assert spec.to_document() == {"name": "a", "version": "0.1.0",
                                  "handler": {"type": "command", "argv": ["true"]}}


@pytest.mark.parametrize("name", templates.names())
def test_templates_are_valid(name: str) -> None:
    spec = agent_spec.validate(documents.parse_yaml(templates.read(name))[0])
    assert spec.name == name


@pytest.mark.parametrize("handler", [
    {"type": "python", "target": "pkg.mod:fn"},
    {"type": "command", "argv": ["python", "-c", "print(1)"], "env": {"A": "1"}},
    {"type": "http", "url": "https://hooks.example.com/agent"},
    {"type": "llm", "prompt": "Summarise {input.text}",
     "model": {"provider": "openai", "name": "gpt-4o-mini"}},
])
def test_each_handler_kind(handler: dict[str, Any]) -> None:
    spec = agent_spec.from_object({"name": "h", "version": "1.0.0", "handler": handler})
    assert spec.handler.type == handler["type"]


def test_every_error_is_reported_at_once_with_path_and_line() -> None:
    bad = (EXAMPLE.replace("version: 1.0.0", "version: 1.0")
           .replace("priority: 8", "priority: 11\n    bogus: 1")
           .replace('"alert.*"', '"alert..*"')
           .replace("timeout_s: 300", 'timeout_s: "300"'))
    errors = {e["path"]: e for e in errors_of(bad)}
    assert set(errors) == {"version", "triggers[0].event", "triggers[0].priority",
                           "triggers[0].bogus", "limits.timeout_s"}
    assert errors["version"]["line"] == 2
    assert errors["triggers[0].event"]["line"] == 13
    assert errors["triggers[0].priority"]["line"] == 15
    assert errors["triggers[0].bogus"] == {"path": "triggers[0].bogus",
                                           "message": "unknown field", "line": 16}


def test_rules_across_fields_are_reported_with_the_field_errors() -> None:
    text = ("name: a\nversion: 1.0.0\nhandler: {type: llm, prompt: hi}\ncolour: red\n"
            "tags: [qa, qa]\ncapabilities: [{name: c}, {name: c, enabled: maybe}]\n"
            "triggers: [{event: 'a..b', capability: nope}]\n"
            "config: {n: {type: integer, value: five}}\n")
    errors = {e["path"]: e["message"] for e in errors_of(text)}
    assert {"colour", "triggers[0].event", "capabilities[1].enabled"} <= set(errors)
    assert "duplicate" in errors["tags[1]"] and "duplicate" in errors["capabilities[1].name"]
    assert "not declared" in errors["triggers[0].capability"]
    assert "integer" in errors["config.n.value"] and "needs a model" in errors["handler.model"]


@pytest.mark.parametrize(("text", "path", "needle"), [
    ("name: [unclosed", "", "malformed YAML"),
    ("- a\n- b\n", "", "must be a mapping"),
    ("just a string", "", "must be a mapping"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\ncolour: red\n", "colour",
     "unknown field"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\ntags: qa\n", "tags",
     "valid list"),
    ("name: a\nversion: 1.0\nhandler: {type: python, target: m:f}\n", "version", "string"),
    ("name: a\nversion: '1.0'\nhandler: {type: python, target: m:f}\n", "version",
     "semantic version"),
    ("name: Bad_Name\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n", "name",
     "pattern"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "triggers: [{event: 'alert.[x]'}]\n", "triggers[0].event", "glob"),
    ("name: a\nversion: 1.0.0\n", "handler", "field required"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python}\n", "handler.target", "field required"),
    ("name: a\nversion: 1.0.0\nhandler: {type: rust}\n", "handler", "does not match"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: nocolon}\n", "handler.target",
     "module:callable"),
    ("name: a\nversion: 1.0.0\nhandler: {type: http, url: 'ftp://x'}\n", "handler.url",
     "pattern"),
    ("name: a\nversion: 1.0.0\nhandler: {type: llm, prompt: hi}\n", "handler.model",
     "needs a model"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "sub_agents: [{name: b, version: '>>1'}]\n", "sub_agents[0].version", "range"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "config: {x: {type: integer, value: 'five'}}\n", "config.x.value", "integer"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "capabilities: [{name: c}, {name: c}]\n", "capabilities[1].name", "duplicate"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "triggers: [{event: x, capability: nope}]\n", "triggers[0].capability", "not declared"),
    # a name that is a list (unhashable) is a type error, not a crash of the cross checks
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "sub_agents: [{name: []}]\n", "sub_agents[0].name", "string"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "capabilities: [{name: [x]}]\ntriggers: [{event: x, capability: c}]\n",
     "capabilities[0].name", "string"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "resources: ['device']\n", "resources", "TYPE:NAME"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "permissions: {lock: ['Device:*']}\n", "permissions.lock", "resource pattern"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "limits: {concurrency: 0}\n", "limits.concurrency", "greater than or equal to 1"),
    ("name: a\nversion: 1.0.0\nhandler: {type: python, target: m:f}\n"
     "limits: {max_retries: true}\n", "limits.max_retries", "integer"),
])
def test_bad_documents(text: str, path: str, needle: str) -> None:
    errors = errors_of(text)
    match = [e for e in errors if e["path"] == path]
    assert match, errors
    assert needle in match[0]["message"], match[0]


def test_malformed_yaml_reports_its_line() -> None:
    errors = errors_of("name: a\nversion: 1.0.0\nhandler: {type: python\n")
    assert errors[0]["line"] is not None and errors[0]["line"] >= 3


@pytest.mark.parametrize(("handler", "message"), [
    # a key named like the handler's type is no tag: it is the unknown field
    ("{type: command, command: 'python3 wc.py'}",
     "handler.command: unknown field; a handler of type command takes argv, env, cwd"),
    ("{type: http, url: 'https://x.test', method: POST}",
     "handler.method: unknown field; a handler of type http takes url, headers"),
    ("{type: python, module: m, target: m:f}",
     "handler.module: unknown field; a handler of type python takes target"),
])
def test_an_unknown_handler_field_is_named_with_what_the_type_takes(
        handler: str, message: str) -> None:
    text = f"name: wc\nversion: 1.0.0\nhandler: {handler}\n"
    with pytest.raises(ValidationFailed) as info:
        agent_spec.validate(documents.parse_yaml(text)[0])
    first = info.value.details["errors"][0]
    assert f"{first['path']}: {first['message']}" == message
    assert first["line"] == 3
    assert message.split(": ", 1)[1] in info.value.message  # the headline says it too
