"""``agentos metrics``: query the metrics' rollups through the server."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from agentos.cli import options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Metrics kept as rollups: counters, gauges and histograms by tag.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)


def _tags(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    found = {}
    for item in text.split(","):
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise InvalidInput(f"--tags takes KEY:VALUE,...; {item!r} is not KEY:VALUE",
                               code="bad_tags")
        found[key.strip()] = value.strip()
    return found


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} takes an ISO 8601 time (2026-12-04T10:00:00Z), "
                           f"not {text!r}", code="bad_time") from None


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="The metric, e.g. task.duration_ms.")],
    tags: Annotated[str | None, typer.Option(metavar="KEY:VALUE,...", show_default=False,
                                             help="Only series with these tags.")] = None,
    bucket: Annotated[str | None, typer.Option(
        metavar="1m|5m|1h|1d", show_default=False,
        help="A point per bucket (default: one value for the whole range).")] = None,
    agg: Annotated[str, typer.Option(
        metavar="count|sum|avg|min|max|last|rate|p50|p90|p95|p99")] = "avg",
    start: Annotated[str | None, typer.Option(
        "--from", metavar="TIME", show_default=False,
        help="ISO 8601 (default: an hour before --to).")] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="TIME", show_default=False,
                                            help="ISO 8601 (default: now).")] = None,
    group_by: Annotated[str | None, typer.Option(metavar="TAG", show_default=False,
                                                 help="A line per value of this tag.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """A metric over a range: one value per bucket (per group with --group-by)."""
    with options.client(url) as api:
        found = api.query_metric(name, agg=agg, bucket=bucket, tags=_tags(tags),
                                 group_by=group_by, start=_moment(start, "--from"),
                                 end=_moment(end, "--to"))
    if json:
        output.emit_json(found)
        return
    rows = [{"group": g["group"], "at": output.timestamp(p["at"]),
             "value": "-" if p["value"] is None else f"{p['value']:g}"}
            for g in found["groups"] for p in g["points"]]
    columns = [("AT", "at"), (agg.upper(), "value")]
    if group_by:
        columns.insert(0, (group_by.upper(), "group"))
    output.table(rows, columns, empty=f"no {name} samples from {found['from']} to "
                 f"{found['to']}")
