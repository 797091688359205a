"""Logging: one line per record, ``action`` and context as key=value pairs.

A record made while a request is served carries that request's id
(``request_id``, also sent to the client as ``X-Request-ID``), so an error the
client sees as ``internal`` can be found in the log with its details.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

# the id of the HTTP request this task is serving (set by api.middleware.RequestLog)
request_id: ContextVar[str | None] = ContextVar("agentos_request_id", default=None)

# uvicorn adds an ANSI-coloured copy of its message: not context worth printing
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "color_message"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records made while a request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None and not hasattr(record, "request_id"):
            record.request_id = current
        return True


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates its setup at INFO; only its warnings matter to an operator
    logging.getLogger("alembic").setLevel(logging.WARNING)
