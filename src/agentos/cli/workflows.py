"""``agentos workflows``: workflow definitions, through the server at AGENTOS_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentos.cli import options, output, runs
from agentos.cli.agents import _read
from agentos.errors import InvalidInput

app = typer.Typer(help="Import, list, show, export, publish and deprecate workflows.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                     help="The workflow's name.")]
Version = Annotated[str, typer.Argument(metavar="VERSION", show_default=False,
                                        help="The version, e.g. 1.2.0.")]
VersionOption = Annotated[str | None, typer.Option(
    "--version", metavar="VERSION", show_default=False,
    help="This version instead of the current one.")]
COLUMNS = [("NAME", "name"), ("VERSION", "version"), ("STATUS", "status"),
           ("STEPS", "steps"), ("DESCRIPTION", "description")]


@app.command("import")
def import_(
    path: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                        help="A YAML file ('-': standard input).")],
    publish: Annotated[bool, typer.Option("--publish", help="Publish what is imported.")
                       ] = False,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Import workflow definitions from YAML (all documents or none)."""
    text = _read(path)
    with options.client(url) as api:
        saved = api.import_workflows(text, publish=publish)
    if json:
        output.emit_json(saved)
        return
    for w in saved:
        typer.echo(f"{w['outcome']} {w['name']} {w['version']} ({w['status']})")


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", show_default=False,
        help="draft, published, deprecated or archived.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List workflows, each with its current version."""
    found: list[dict[str, Any]] = []
    with options.client(url) as api:
        after = None
        while True:
            page = api.list_workflows(status=status, after=after)
            found += page["workflows"]
            if (after := page["next_after"]) is None:
                break
    if json:
        output.emit_json(found)
    else:
        output.table(found, COLUMNS, empty="no workflows")


@app.command()
def show(name: Name, version: VersionOption = None, json: options.Json = False,
         url: options.Url = None) -> None:
    """Show a workflow: its current version (or --version) and its steps."""
    with options.client(url) as api:
        found = api.get_workflow(name, version)
    if json:
        output.emit_json(found)
        return
    output.fields([("name", found["name"]), ("version", found["version"]),
                   ("status", found["status"]), ("description", found["description"]),
                   ("published", output.timestamp(found["published_at"]))])
    typer.echo("")
    output.table([{"id": s["id"], "type": s.get("type", "agent"),
                   "what": s.get("agent") or s.get("workflow") or s.get("event")
                   or s.get("role"), "after": s.get("depends_on"),
                   "each": "yes" if s.get("for_each") else None, "when": s.get("when")}
                  for s in found["definition"]["steps"]],
                 [("STEP", "id"), ("TYPE", "type"), ("RUNS", "what"), ("AFTER", "after"),
                  ("FOR EACH", "each"), ("WHEN", "when")])


@app.command()
def versions(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """List every version of a workflow, highest first."""
    with options.client(url) as api:
        found = api.workflow_versions(name)
    if json:
        output.emit_json(found)
    else:
        output.table(found, COLUMNS)


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
        text = api.export_workflow(name, version)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror}", code="cannot_write") from None
    typer.echo(f"wrote {out}", err=True)


@app.command()
def publish(name: Name, version: Version, json: options.Json = False,
            url: options.Url = None) -> None:
    """Publish a draft (or re-publish a deprecated version): runs may use it."""
    with options.client(url) as api:
        _changed(api.publish_workflow(name, version), json)


@app.command()
def deprecate(name: Name, version: Version, json: options.Json = False,
              url: options.Url = None) -> None:
    """Deprecate a published version: no new runs of it."""
    with options.client(url) as api:
        _changed(api.deprecate_workflow(name, version), json)


@app.command()
def archive(name: Name, version: Version, json: options.Json = False,
            url: options.Url = None) -> None:
    """Archive a deprecated version: kept for history only."""
    with options.client(url) as api:
        _changed(api.archive_workflow(name, version), json)


# the SPEC's names for starting a run and looking at it
app.command("run", help="Start a run (the same as `agentos runs start`).")(runs.start)
app.command("status", help="Show a run (the same as `agentos runs show`).")(runs.show)


def _changed(found: dict[str, Any], json: bool) -> None:
    output.answer(found, json, f"{found['name']} {found['version']} is now {found['status']}")
