"""``agentos audit``: read the audit log (through the server) and verify its chain
(straight on the database, so a compromised server cannot vouch for itself)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from agentos.cli import db, options, output

app = typer.Typer(help="Read and verify the audit log.", invoke_without_command=True)
app.callback()(options.help_if_bare)

COLUMNS = [("SEQ", "seq"), ("AT", "at"), ("ACTOR", "actor"), ("ACTION", "action"),
           ("OUTCOME", "outcome"), ("RESOURCE", "resource"), ("IP", "ip")]


@app.command()
def verify(json: options.Json = False) -> None:
    """Walk the hash chain in AGENTOS_DATABASE_URL: "intact", or the first broken link
    (exit code 2)."""
    settings = options.settings()
    verdict = asyncio.run(_verify(settings.database_url))
    if json:
        output.emit_json(verdict)
    elif verdict["intact"]:
        typer.echo(f"intact: {verdict['checked']} rows, head {verdict['head_seq']} "
                   f"{verdict['head_hash']}")
    else:
        typer.echo(f"broken at row {verdict['broken_seq']}: {verdict['reason']} "
                   f"({verdict['checked']} rows before it are intact)")
    if not verdict["intact"]:
        raise typer.Exit(2)


async def _verify(url: str) -> dict[str, Any]:
    from agentos import audit
    from agentos.store import open_store

    db.require_database(url)
    with db.reaching(url):
        store = open_store(url, pool_size=1)
        try:
            return (await audit.verify(store)).to_dict()
        finally:
            await store.close()


@app.command("list")
def list_(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="user:NAME or key:PREFIX.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. tasks.cancel.")] = None,
    resource_type: Annotated[str | None, typer.Option(help="e.g. tasks.")] = None,
    resource_id: Annotated[str | None, typer.Option(help="One resource.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok or denied.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    before_seq: Annotated[int | None, typer.Option(
        min=1, help="The page before this one: the number a list said more follow from.")
                          ] = None,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """The latest audit rows, newest first (admin only); when more follow, says how to
    see them (on stderr)."""
    with options.client(url) as api:
        page = api.audit(actor=actor, action=action, resource_type=resource_type,
                         resource_id=resource_id, outcome=outcome, before_seq=before_seq,
                         limit=limit)
    if json:
        output.emit_json(page["entries"])
    else:
        rows = [{**e, "at": output.timestamp(e["at"]),
                 "resource": "/".join(p for p in (e["resource_type"], e["resource_id"]) if p)}
                for e in page["entries"]]
        output.table(rows, COLUMNS, empty="no audit rows")
    output.more_follow(ctx, "--before-seq", page["next_before_seq"])
