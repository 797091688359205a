"""``agentos locks``: list, show, acquire (one, or any of a pool), release and
force-release resource locks."""

from __future__ import annotations

import getpass
import socket
from typing import Annotated, Any

import typer

from agentos.api.schemas.locks import Lock
from agentos.cli import options, output

app = typer.Typer(help="Inspect, take and give back resource locks.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Resource = Annotated[str, typer.Argument(metavar="RESOURCE", show_default=False,
                                         help="TYPE:NAME, e.g. device:pixel-7.")]
Owner = Annotated[str | None, typer.Option(
    "--owner", show_default=False, help="Who holds it [default: USER@HOST].")]
Token = Annotated[int, typer.Option("--token", min=1, show_default=False,
                                    help="The fencing token the acquire returned.")]

COLUMNS = [("RESOURCE", "resource"), ("HOLDER", "holder"), ("TOKEN", "token"),
           ("PRI", "priority"), ("EXPIRES", "expires"), ("TASK", "task"),
           ("WAITING", "waiting")]


def _owner(owner: str | None) -> str:
    return owner or f"{getpass.getuser()}@{socket.gethostname()}"


def _row(lock: Lock) -> dict[str, Any]:
    holder = lock.holder
    waiting = [f"{w.owner}({w.priority})" for w in lock.queue]
    return {"resource": lock.resource, "holder": holder and holder.owner,
            "token": holder and holder.token, "priority": holder and holder.priority,
            "expires": holder and holder.expires_at,
            "task": holder and holder.agent and f"{holder.agent} {holder.task_id}",
            "waiting": waiting}


@app.command("list")
def list_(type: Annotated[str | None, typer.Option(
        "--type", help="Only TYPE:... resources, e.g. device.")] = None,
        json: options.Json = False, url: options.Url = None) -> None:
    """Held locks and locks with waiters."""
    with options.client(url) as api:
        found = list(api.iterate(api.list_locks, type=type))
    if json:
        output.emit_json(found)
        return
    output.table([_row(lock) for lock in found], COLUMNS, empty="no locks held")


@app.command()
def show(resource: Resource, json: options.Json = False, url: options.Url = None) -> None:
    """One resource: its holder and its queue."""
    with options.client(url) as api:
        lock = api.get_lock(resource)
    if json:
        output.emit_json(lock)
        return
    holder = lock.holder
    pairs: list[tuple[str, Any]] = [("resource", lock.resource),
                                    ("holder", holder.owner if holder else "free")]
    if holder:
        pairs += [("token", holder.token), ("priority", holder.priority),
                  ("acquired", holder.acquired_at), ("expires", holder.expires_at),
                  ("task", holder.task_id and f"{holder.agent} {holder.task_id}")]
    pairs.append(("last token", lock.last_token))
    output.fields(pairs)
    if lock.queue:
        typer.echo("")
        output.table(lock.queue, [("POS", "position"), ("OWNER", "owner"), ("PRI", "priority"),
                                  ("QUEUED", "queued_at"), ("TASK", "task_id")])


@app.command()
def acquire(
    resource: Resource, owner: Owner = None,
    priority: Annotated[int, typer.Option(min=1, max=10, help="10 is served first.")] = 5,
    ttl: Annotated[float, typer.Option("--ttl-s", help="Lease in seconds.")] = 30.0,
    wait: Annotated[float, typer.Option("--wait-s", help="Seconds to wait in the queue "
                                        "(0: try once).")] = 0.0,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Take a lock (it stays held until released or its lease lapses). Exit 3 if busy."""
    with options.client(url) as api:
        got = api.acquire_lock(resource, _owner(owner), priority=priority, ttl_s=ttl,
                               wait_s=wait)
    if json:
        output.emit_json(got)
    elif got.granted:
        typer.echo(f"acquired {resource} token={got.token} "
                   f"expires={output.timestamp(got.expires_at)}")
    else:
        typer.echo(f"{resource} is held; position {got.position} in its queue", err=True)
    if not got.granted:
        raise typer.Exit(BUSY)


BUSY = 3  # exit code: the lock was not granted


@app.command("acquire-any")
def acquire_any(
    resources: Annotated[list[str] | None, typer.Argument(
        metavar="[RESOURCE]...", show_default=False,
        help="The pool, in order of preference (or give --prefix).")] = None,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", show_default=False,
        help="Every resource ever locked whose id starts with this, e.g. device:android-.")]
        = None,
    owner: Owner = None,
    priority: Annotated[int, typer.Option(min=1, max=10, help="10 is served first.")] = 5,
    ttl: Annotated[float, typer.Option("--ttl-s", help="Lease in seconds.")] = 30.0,
    wait: Annotated[float, typer.Option("--wait-s", help="Seconds to wait in every one's "
                                        "queue (0: try once).")] = 0.0,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Take the first free resource of a pool. Exit 3 if every one is busy."""
    with options.client(url) as api:
        got = api.acquire_any(_owner(owner), resources=resources or None, prefix=prefix,
                              priority=priority, ttl_s=ttl, wait_s=wait)
    if json:
        output.emit_json(got)
    elif got["granted"]:
        typer.echo(f"acquired {got['resource']} token={got['token']} "
                   f"expires={output.timestamp(got['expires_at'])}")
    else:
        typer.echo(f"every one is held; best place: position {got['position']} in the "
                   f"queue of {got['resource']}", err=True)
    if not got["granted"]:
        raise typer.Exit(BUSY)


@app.command()
def release(resource: Resource, token: Token, owner: Owner = None,
            json: options.Json = False, url: options.Url = None) -> None:
    """Give a lock back (the owner and token must match the holder's)."""
    with options.client(url) as api:
        done = api.release_lock(resource, _owner(owner), token)
    if json:
        output.emit_json(done)
        return
    typer.echo(f"released {resource} token={token}")


@app.command("force-release")
def force_release(resource: Resource, json: options.Json = False,
                  url: options.Url = None) -> None:
    """Take a lock from its holder (operators); the next waiter gets it."""
    with options.client(url) as api:
        done = api.force_release_lock(resource)
    if json:
        output.emit_json(done)
        return
    typer.echo(f"force-released {resource} from {done.owner} (token {done.token})")
