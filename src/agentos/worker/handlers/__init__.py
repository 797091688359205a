"""Handler kinds (SPEC §2.5): how an agent's task input becomes its output.

Every kind is loaded into one shape, ``handler(ctx, input) -> dict``, which the
worker awaits under the task's timeout and cancels on timeout, cancel or
shutdown. A handler fails its attempt by raising; ``HandlerError(retryable=False)``
dead-letters at once.

    python   an importable async or sync callable (sync: in its own thread, with
             a ``ThreadContext``; see ``handlers.python`` for how it stops)
    command  a subprocess: input as JSON on stdin, output as JSON on stdout
    http     a webhook POST to an allow-listed host (AGENTOS_HTTP_ALLOW)
    llm      an OpenAI-compatible chat completion (AGENTOS_LLM_BASE_URL),
             its tokens and cost reported through ``ctx.usage``
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from agentos import agent_spec
from agentos.config import Settings
from agentos.worker.handlers import command, http, llm, python
from agentos.worker.handlers.context import (
    BudgetSpent,
    Context,
    Handler,
    HandlerError,
    LockUnavailable,
    SubTaskFailed,
    Usage,
)
from agentos.worker.handlers.python import ThreadContext

__all__ = ["BudgetSpent", "Context", "Handler", "HandlerError", "LockUnavailable",
           "SubTaskFailed", "ThreadContext", "Usage", "load"]

_SPEC: TypeAdapter[Any] = TypeAdapter(agent_spec.Handler)


def load(definition: dict[str, Any], settings: Settings | None = None) -> Handler:
    """The callable that runs an agent version's handler (``definition`` as stored)."""
    spec = _SPEC.validate_python(definition["handler"])
    if isinstance(spec, agent_spec.PythonHandler):
        return python.make(spec)
    if isinstance(spec, agent_spec.CommandHandler):
        return command.make(spec)
    settings = settings or Settings()
    if isinstance(spec, agent_spec.HttpHandler):
        return http.make(spec, settings)
    assert isinstance(spec, agent_spec.LlmHandler)
    model = spec.model or agent_spec.ModelRef.model_validate(definition["model"])
    return llm.make(spec, model, settings)
