"""Resource ids (``TYPE:NAME``) and the resources an agent declares: pure code.

An agent's ``resources`` are templates over its task input
(``device:{input.device_id}``); ``render`` fills them in, and ``check_permitted``
holds every resource an agent locks against its ``permissions.lock`` globs.
"""

from __future__ import annotations

import re
from typing import Any

from agentos import patterns
from agentos.errors import Forbidden, InvalidInput

_PLACEHOLDER = re.compile(r"\{input((?:\.[A-Za-z0-9_-]+)+)\}")


def check(resource: Any) -> str:
    """The resource id itself, or 400 for anything that is not ``TYPE:NAME``."""
    if not isinstance(resource, str) or not patterns.RESOURCE_ID.match(resource):
        raise InvalidInput(
            f"{resource!r} is not a resource id: use TYPE:NAME, e.g. 'device:pixel-7' "
            "(type: lowercase letters, digits, '_' or '-'; name: up to 200 of "
            "A-Z a-z 0-9 _ . : / @ + = -)", code="bad_resource",
            details={"resource": resource})
    return resource


def type_of(resource: str) -> str:
    return resource.partition(":")[0]


def render(templates: list[str], data: dict[str, Any]) -> list[str]:
    """Each template with its ``{input.a.b}`` placeholders taken from ``data``."""
    rendered = []
    for template in templates:
        def fill(match: re.Match[str], template: str = template) -> str:
            value: Any = data
            for key in match.group(1).split(".")[1:]:
                if not isinstance(value, dict) or key not in value:
                    raise InvalidInput(
                        f"resource {template!r} needs input{match.group(1)}, which the "
                        "task input does not have", code="resource_input_missing",
                        details={"template": template})
                value = value[key]
            if isinstance(value, dict | list) or value is None:
                raise InvalidInput(f"resource {template!r}: input{match.group(1)} must be a "
                                   "string or number", code="bad_resource",
                                   details={"template": template})
            return str(value)

        rendered.append(check(_PLACEHOLDER.sub(fill, template)))
    return rendered


def check_permitted(agent: str, allowed: list[str], wanted: list[str]) -> None:
    """403 unless every resource in ``wanted`` matches one of the ``allowed`` globs."""
    refused = [r for r in wanted if not any(patterns.matches(g, r) for g in allowed)]
    if refused:
        raise Forbidden(
            f"agent {agent} may not lock {', '.join(refused)}: its permissions.lock is "
            f"{allowed or '[]'}", code="lock_not_permitted",
            details={"agent": agent, "resources": refused, "allowed": allowed})
