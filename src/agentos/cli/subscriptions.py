"""``agentos subscriptions``: named durable subscriptions with a cursor on the server."""

from __future__ import annotations

from typing import Annotated

import typer

from agentos.cli import events, options, output

app = typer.Typer(help="Read the log through named subscriptions that remember their place.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The subscription's name.",
                                     show_default=False)]

LIST_COLUMNS = [("NAME", "name"), ("TYPE", "type"), ("CURSOR", "cursor_seq"),
                ("HEAD", "head_seq"), ("ACKED", "acked_at")]


@app.command()
def create(
    name: Name,
    type_: Annotated[str, typer.Option(
        "--type", metavar="GLOB", help="The event types it receives.")] = "*",
    from_start: Annotated[bool, typer.Option(
        "--from-start", help="Read the whole log instead of starting at its head.")] = False,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Create a subscription; it receives events after the log's head (or all, --from-start)."""
    with options.client(url) as api:
        sub = api.create_subscription(name, type_, from_start=from_start)
    if json:
        output.emit_json(sub)
        return
    typer.echo(f"created subscription {sub.name} for {sub.type} after seq {sub.cursor_seq}")


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """List subscriptions, each with its cursor and the log's head."""
    with options.client(url) as api:
        found = list(api.iterate(api.list_subscriptions))
    if json:
        output.emit_json(found)
    else:
        output.table(found, LIST_COLUMNS, empty="no subscriptions")


@app.command()
def pending(
    name: Name,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=1000,
                                       help="At most N events.")] = 100,
    wait_s: Annotated[float, typer.Option(
        metavar="SECONDS", min=0, max=60,
        help="When nothing is pending, wait up to SECONDS for an event.")] = 0.0,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """The next events after the subscription's cursor, not acknowledged yet."""
    with options.client(url) as api:
        found = api.pending(name, limit, wait_s)
    if json:
        output.emit_json(found)
    else:
        output.table(found, events.EVENT_COLUMNS,
                     empty="nothing pending")


@app.command()
def ack(
    name: Name,
    seq: Annotated[int, typer.Argument(
        metavar="SEQ", min=0, show_default=False,
        help="The last sequence number handled: it and every one before are done.")],
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Acknowledge events up to SEQ: they will not be delivered again."""
    with options.client(url) as api:
        sub = api.ack(name, seq)
    if json:
        output.emit_json(sub)
        return
    typer.echo(f"subscription {sub.name} is at seq {sub.cursor_seq}")


@app.command()
def delete(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Delete a subscription and its cursor."""
    with options.client(url) as api:
        api.delete_subscription(name)
    if json:
        output.emit_json({"deleted": name})
        return
    typer.echo(f"deleted subscription {name}")

