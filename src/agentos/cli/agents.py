"""``agentos agents``: the agent registry, through the server at AGENTOS_URL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from agentos import templates
from agentos.cli import options, output
from agentos.errors import AgentOSError, InvalidInput
from agentos.lifecycle import Status

app = typer.Typer(help="Import, find, publish and export agent definitions.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The agent's name.",
                                     show_default=False)]
Version = Annotated[str, typer.Argument(metavar="VERSION", help="The version, e.g. 1.0.0.",
                                        show_default=False)]
VersionOption = Annotated[str | None, typer.Option(
    "--version", "-v", help="A version instead of the current one.", show_default=False)]

LIST_COLUMNS = [("NAME", "name"), ("VERSION", "version"), ("STATUS", "status"),
                ("TAGS", "tags"), ("DESCRIPTION", "description")]
VERSION_COLUMNS = [("VERSION", "version"), ("STATUS", "status"),
                   ("PUBLISHED", "published_at"), ("UPDATED", "updated_at")]


@app.command("import")
def import_(
    files: Annotated[list[str] | None, typer.Argument(
        metavar="FILE", show_default=False,
        help="YAML or JSON definition files; '-' reads stdin.")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish", help="Publish the imported versions at once.")] = False,
    template: Annotated[list[str] | None, typer.Option(
        "--template", "-t", metavar="NAME", show_default=False,
        help=f"A starter template ({', '.join(templates.names())}); repeatable.")] = None,
    url: options.Url = None,
) -> None:
    """Import agent definitions from files or starter templates.

    Templates first, then the files in order: one request each, stopping at
    the first that fails. A file may hold several documents separated by ---;
    they are imported all or none.
    """
    sources = [(f"{name} template", templates.read(name)) for name in template or []]
    sources += [("stdin" if path == "-" else path, _read(path)) for path in files or []]
    if not sources:
        raise InvalidInput("give one or more FILEs or --template NAME", code="nothing_to_import")
    with options.client(url) as api:
        for source, text in sources:
            try:
                imported = api.import_yaml(text, publish=publish)
            except AgentOSError as exc:
                raise type(exc)(f"{source}: {exc.message}", code=exc.code,
                                details={**exc.details, "source": source}) from None
            for agent in imported:
                typer.echo(f"imported {agent['name']} {agent['version']} ({agent['status']}) "
                           f"from {source}")


@app.command("list")
def list_(
    q: Annotated[str | None, typer.Option(
        "--q", metavar="TEXT", show_default=False,
        help="Text in the name, display name, description or role.")] = None,
    tag: Annotated[str | None, typer.Option(
        metavar="TAG", help="Only agents with this tag.", show_default=False)] = None,
    capability: Annotated[str | None, typer.Option(
        metavar="NAME", help="Only agents with this capability.", show_default=False)] = None,
    status: Annotated[Status | None, typer.Option(
        metavar="STATUS", show_default=False,
        help="Only versions in this status: draft, published, deprecated or archived "
             "(default: each agent's current version).")] = None,
    event: Annotated[str | None, typer.Option(
        metavar="TYPE", show_default=False,
        help="Only agents whose published triggers match this event type.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List agents, each with its current version.

    The current version is the latest published one, else the newest draft.
    """
    with options.client(url) as api:
        agents = list(api.iter_agents(q=q, tag=tag, capability=capability,
                                      status=status.value if status else None, event=event))
    if json:
        output.emit_json(agents)
    else:
        output.table(agents, LIST_COLUMNS, empty="no agents found")


@app.command()
def show(name: Name, version: VersionOption = None, json: options.Json = False,
         url: options.Url = None) -> None:
    """Show an agent: its current version, or --version."""
    with options.client(url) as api:
        agent = api.get_version(name, version) if version else api.get_agent(name)
    if json:
        output.emit_json(agent)
        return
    definition: dict[str, Any] = agent["definition"]
    output.fields([
        ("name", agent["name"]),
        ("version", agent["version"]),
        ("status", agent["status"]),
        ("display name", agent["display_name"]),
        ("description", agent["description"]),
        ("role", agent["role"]),
        ("owner", agent["owner"]),
        ("tags", agent["tags"]),
        ("capabilities", agent["capabilities"]),
        ("triggers", agent["triggers"]),
        ("handler", definition.get("handler")),
        ("model", definition.get("model")),
        ("created", output.timestamp(agent["created_at"])),
        ("published", output.timestamp(agent["published_at"])),
    ])


@app.command()
def versions(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """List every version of an agent, highest first."""
    with options.client(url) as api:
        found = api.versions(name)
    if json:
        output.emit_json(found)
    else:
        output.table([{**v, "published_at": output.timestamp(v["published_at"]),
                       "updated_at": output.timestamp(v["updated_at"])} for v in found],
                     VERSION_COLUMNS)


@app.command()
def publish(name: Name, version: Version, url: options.Url = None) -> None:
    """Publish a draft, or re-publish a deprecated version."""
    with options.client(url) as api:
        _changed(api.publish(name, version))


@app.command()
def deprecate(name: Name, version: Version, url: options.Url = None) -> None:
    """Deprecate a published version: no longer latest, not routed to."""
    with options.client(url) as api:
        _changed(api.deprecate(name, version))


@app.command()
def archive(name: Name, version: Version, url: options.Url = None) -> None:
    """Archive a deprecated version: kept for history only."""
    with options.client(url) as api:
        _changed(api.archive(name, version))


@app.command()
def delete(name: Name, version: Version, url: options.Url = None) -> None:
    """Delete a draft version (published versions are kept)."""
    with options.client(url) as api:
        api.delete_draft(name, version)
    typer.echo(f"deleted draft {name} {version}")


@app.command()
def export(
    name: Name,
    version: VersionOption = None,
    out: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="Write to FILE instead of stdout.")] = None,
    url: options.Url = None,
) -> None:
    """Export a definition as YAML: the current version, or --version."""
    with options.client(url) as api:
        text = api.export(name, version)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror}", code="cannot_write") from None
    typer.echo(f"wrote {out}", err=True)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", code="cannot_read") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {path}: not UTF-8 text", code="cannot_read") from None


def _changed(agent: dict[str, Any]) -> None:
    typer.echo(f"{agent['name']} {agent['version']} is now {agent['status']}")
