"""Output for people (plain aligned text) and for scripts (``--json``)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

MAX_CELL = 60  # characters; longer text is cut in tables (--json has it all)


def emit_json(data: Any) -> None:
    """``data`` (models of the API included) as indented JSON, as the API sends it."""
    typer.echo(json.dumps(to_jsonable_python(data), indent=2, ensure_ascii=False))


def answer(found: Any, json: bool, sentence: str) -> None:
    """What a command that changed something prints: with ``--json`` what the API
    answered (``found``), else ``sentence``."""
    if json:
        emit_json(found)
    else:
        typer.echo(sentence)


def more_follow(ctx: typer.Context, option: str, cursor: Any) -> None:
    """When ``cursor`` is not None, say on stderr (stdout stays the table or the JSON)
    the command that shows the next page: this one (``ctx``), with the same arguments
    and options, and ``option`` (``--before-seq``...) set to ``cursor``."""
    if cursor is None:
        return
    words = ["agentos", *ctx.command_path.split()[1:]]
    options: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            values = value if isinstance(value, tuple | list) else () if value is None \
                else (value,)
            words += [_word(v) for v in values]
        elif option not in param.opts and value not in (None, (), []) \
                and value != param.default:
            if getattr(param, "is_flag", False):
                options += (param.opts if value else param.secondary_opts)[:1]
            else:
                for one in value if param.multiple else [value]:
                    options += [param.opts[0], _word(one)]
    typer.echo(f"more follow: {shlex.join([*words, *options, option, str(cursor)])}", err=True)


def _word(value: Any) -> str:
    return str(getattr(value, "value", value))


def cell(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, datetime):
        return str(timestamp(value))
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def table(rows: Iterable[dict[str, Any] | BaseModel], columns: Sequence[tuple[str, str]],
          empty: str = "nothing to show") -> None:
    """Print ``rows`` under ``columns`` (header, key); the last column is not padded."""
    cells = [[_cut(cell(_get(row, key))) for _, key in columns] for row in rows]
    if not cells:
        typer.echo(empty, err=True)
        return
    headers = [header for header, _ in columns]
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(len(columns))]
    for line in [headers, *cells]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def wide(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``header``, aligned, with the last column (a reason, a
    message) in full: never cut, never padded."""
    last = len(header) - 1
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(last)]
    for row in [header, *rows]:
        typer.echo("  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)),
                              row[last]]))


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """Print ``label  value`` lines, labels aligned."""
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        typer.echo(f"{label.ljust(width)}  {cell(value)}")


def timestamp(moment: datetime | str | None) -> str | None:
    """An API timestamp, to the second, in UTC: 2026-01-31T12:00:00Z."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(row: dict[str, Any] | BaseModel, key: str) -> Any:
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def end_on_ctrl_c() -> None:
    """Make Ctrl+C (SIGINT) end a command that follows something live (a tail, a
    watch, a follow) at once with exit 0: what it printed is flushed and nothing else
    needs closing. Set explicitly, so it holds also when the process was started with
    SIGINT ignored (a background job of a script, where Python installs no
    KeyboardInterrupt), and no KeyboardInterrupt unwinds through the HTTP client's
    streaming read."""
    signal.signal(signal.SIGINT, _end)


def _end(signum: int, frame: object) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)
