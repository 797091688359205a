"""``agentos projections``: read models folded from the event log."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from agentos.cli import options, output
from agentos.errors import Unavailable

app = typer.Typer(help="List read models, show their state, rebuild them from the log.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                     help="The projection's name.")]
COLUMNS = [("NAME", "name"), ("STATUS", "status"), ("CURSOR", "cursor_seq"),
           ("HEAD", "head_seq"), ("LAG", "lag_events"), ("LAG S", "lag_s"),
           ("EVENTS", "types")]
POLL_S = 0.25  # seconds between looks at a rebuild's progress
STALL_S = 60.0  # seconds without progress before a rebuild is reported stuck


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """Every projection: where its cursor stands and how far behind the log it is."""
    with options.client(url) as api:
        found = api.list_projections()
    if json:
        output.emit_json(found)
    else:
        output.table(found, COLUMNS, empty="no projections")


@app.command()
def show(name: Name, key: Annotated[str | None, typer.Option(
        metavar="KEY", show_default=False, help="Only this key of its state.")] = None,
         prefix: Annotated[str | None, typer.Option(
             metavar="TEXT", show_default=False, help="Only keys starting so.")] = None,
         json: options.Json = False, url: options.Url = None) -> None:
    """A projection's status and its state."""
    with options.client(url) as api:
        at = api.get_projection(name)
        state = api.projection_state(name, key=key, prefix=prefix)
    if json:
        output.emit_json({**at, "state": state})
        return
    output.fields([("name", at["name"]), ("status", at["status"]),
                   ("cursor", f"{at['cursor_seq']} of {at['head_seq']}"),
                   ("lag", f"{at['lag_events']} events, {at['lag_s']} s")])
    for item, value in state["items"].items():
        typer.echo(f"{item}  {output.cell(value)}")


@app.command()
def rebuild(name: Name, wait: Annotated[bool, typer.Option(
        help="Follow the rebuild with a progress bar until it has caught up.")] = True,
            json: options.Json = False, url: options.Url = None) -> None:
    """Clear a projection and fold the whole log into it again (--json: the projection
    as the API shows it once caught up, or at once with --no-wait)."""
    with options.client(url) as api:
        at = api.rebuild_projection(name)
        if not wait or at["rebuild"] is None:
            output.answer(at, json, f"{name}: {at['status']}")
            return
        target = at["rebuild"]["target_seq"]
        done = at["cursor_seq"]
        moved = time.monotonic()
        with typer.progressbar(length=target, label=f"rebuilding {name}",
                               file=sys.stderr) as bar:
            while at["rebuild"] is not None:
                time.sleep(POLL_S)
                at = api.get_projection(name)
                cursor = min(at["cursor_seq"], target)
                if cursor > done:
                    bar.update(cursor - done)
                    done, moved = cursor, time.monotonic()
                elif time.monotonic() - moved > STALL_S:
                    raise Unavailable(f"{name} has not moved for {STALL_S:g} s: is a server "
                                      "with AGENTOS_RUN_PROJECTIONS running?",
                                      code="rebuild_stalled")
            bar.update(target - done)
    output.answer(at, json, f"{name}: rebuilt up to {target}, {at['status']}")


