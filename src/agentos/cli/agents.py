"""``agentos agents``: the agent registry, through the server at AGENTOS_URL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from agentos import templates
from agentos.api.schemas.agents import AgentVersion, ImportWarning
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
    json: options.Json = False, url: options.Url = None,
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
    results = []
    with options.client(url) as api:
        for source, text in sources:
            try:
                imported = api.import_yaml(text, publish=publish)
            except AgentOSError as exc:
                raise type(exc)(f"{source}: {exc.message}", code=exc.code,
                                details={**exc.details, "source": source}) from None
            results.append({"source": source, **imported.model_dump(mode="json")})
            if not json:
                for agent in imported.agents:
                    done = "unchanged" if agent.result == "unchanged" else "imported"
                    typer.echo(f"{done} {agent.name} {agent.version} ({agent.status}) "
                               f"from {source}")
            _warn(imported.warnings)
    if json:
        output.emit_json(results)


def _warn(warnings: list[ImportWarning]) -> None:
    """What will stop tasks running, on stderr: the import or publish itself went on."""
    for w in warnings:
        typer.echo(f"warning: {w.name} {w.version}: {w.message}", err=True)


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
        agents = list(api.iterate(api.list_agents, q=q, tag=tag, capability=capability,
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
    definition: dict[str, Any] = agent.definition
    output.fields([
        ("name", agent.name),
        ("version", agent.version),
        ("status", agent.status),
        ("display name", agent.display_name),
        ("description", agent.description),
        ("role", agent.role),
        ("owner", agent.owner),
        ("tags", agent.tags),
        ("capabilities", agent.capabilities),
        ("triggers", agent.triggers),
        ("handler", definition.get("handler")),
        ("model", definition.get("model")),
        ("created", output.timestamp(agent.created_at)),
        ("published", output.timestamp(agent.published_at)),
    ])


@app.command()
def versions(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """List every version of an agent, highest first."""
    with options.client(url) as api:
        found = api.versions(name)
    if json:
        output.emit_json(found)
    else:
        output.table(found, VERSION_COLUMNS)


@app.command()
def publish(name: Name, version: Version, json: options.Json = False,
            url: options.Url = None) -> None:
    """Publish a draft, or re-publish a deprecated version."""
    with options.client(url) as api:
        published = api.publish(name, version)
    _changed(published, json)
    _warn(published.warnings)


@app.command()
def deprecate(name: Name, version: Version, json: options.Json = False,
              url: options.Url = None) -> None:
    """Deprecate a published version: no longer latest, not routed to."""
    with options.client(url) as api:
        _changed(api.deprecate(name, version), json)


@app.command()
def archive(name: Name, version: Version, json: options.Json = False,
            url: options.Url = None) -> None:
    """Archive a deprecated version: kept for history only."""
    with options.client(url) as api:
        _changed(api.archive(name, version), json)


@app.command()
def delete(name: Name, version: Version, json: options.Json = False,
           url: options.Url = None) -> None:
    """Delete a draft version (published versions are kept)."""
    with options.client(url) as api:
        api.delete_draft(name, version)
    if json:
        output.emit_json({"deleted": {"name": name, "version": version}})
        return
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


def _changed(agent: AgentVersion, json: bool) -> None:
    if json:
        output.emit_json(agent)
    else:
        typer.echo(f"{agent.name} {agent.version} is now {agent.status}")


CONFIG_COLUMNS = [("KEY", "key"), ("TYPE", "type"), ("VALUE", "value"),
                  ("DEFAULT", "default"), ("OVERRIDDEN", "overridden"), ("BY", "by")]
CAPABILITY_COLUMNS = [("NAME", "name"), ("VERSION", "version"), ("ENABLED", "enabled"),
                      ("DECLARED", "declared_enabled"), ("REASON", "reason")]


@app.command()
def config(
    name: Name,
    action: Annotated[str | None, typer.Argument(
        metavar="[set KEY VALUE | unset KEY]", show_default=False,
        help="Override a key live, or clear its override.")] = None,
    key: Annotated[str | None, typer.Argument(metavar="", show_default=False)] = None,
    value: Annotated[str | None, typer.Argument(metavar="", show_default=False)] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Show an agent's live config, or set or unset one key.

    VALUE is taken as it is for a string key, and as JSON for the others
    (5, 0.9, true, '{"a": 1}'); the server checks it against the key's
    declared type and bounds. Handlers see the change from their next attempt.
    """
    with options.client(url) as api:
        if action is None:
            found = api.agent_config(name)
            if json:
                output.emit_json(found)
                return
            output.table([{**e, "by": (e["override"] or {}).get("updated_by")}
                          for e in found["config"]], CONFIG_COLUMNS,
                         empty=f"{name} {found['version']} declares no config")
            return
        if action == "set" and key is not None and value is not None:
            entry = api.set_config(name, key, _config_value(api, name, key, value))
        elif action == "unset" and key is not None and value is None:
            entry = api.unset_config(name, key)
        else:
            raise InvalidInput("use: agentos agents config NAME [set KEY VALUE | unset KEY]",
                               code="bad_arguments")
    if json:
        output.emit_json(entry)
    else:
        state = "overridden" if entry["overridden"] else "the default"
        typer.echo(f"{name} {entry['key']} = {output.cell(entry['value'])} ({state})")


def _config_value(api: Any, name: str, key: str, text: str) -> Any:
    """VALUE as the key's type wants it: a string key takes it as it is, others as JSON."""
    import json as json_

    declared = {e["key"]: e["type"] for e in api.agent_config(name)["config"]}
    if declared.get(key) == "string":
        return text
    try:
        return json_.loads(text)
    except ValueError:
        if key not in declared:
            return text  # the server names the unknown key
        raise InvalidInput(f"{key} is a {declared[key]} key: give VALUE as JSON "
                           f"(e.g. 5, 0.9, true), not {text!r}", code="bad_value") from None


@app.command()
def capabilities(
    name: Name,
    action: Annotated[str | None, typer.Argument(
        metavar="[enable|disable CAPABILITY]", show_default=False,
        help="Switch a capability on or off live.")] = None,
    capability: Annotated[str | None, typer.Argument(metavar="", show_default=False)] = None,
    reason: Annotated[str, typer.Option(
        "--reason", metavar="TEXT", help="Why (required to disable).")] = "",
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Show an agent's capabilities, or enable or disable one now (audited)."""
    with options.client(url) as api:
        if action is None:
            found = api.capabilities(name)
        elif action in ("enable", "disable") and capability is not None:
            switch = api.enable_capability if action == "enable" else api.disable_capability
            found = switch(name, capability, reason)
        else:
            raise InvalidInput("use: agentos agents capabilities NAME "
                               "[enable|disable CAPABILITY --reason TEXT]",
                               code="bad_arguments")
    if json:
        output.emit_json(found)
        return
    output.table([{**c, "reason": (c["switch"] or {}).get("reason") or None}
                  for c in found["capabilities"]], CAPABILITY_COLUMNS,
                 empty=f"{name} declares no capabilities")


@app.command()
def state(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Show an agent's live state: status, tasks, locks, holds, heartbeat, last error."""
    with options.client(url) as api:
        found = api.agent_state(name)
    if json:
        output.emit_json(found)
        return
    error = found["last_error"]
    output.fields([
        ("agent", found["agent"]),
        ("status", found["status"]),
        ("running", [t["id"] for t in found["running_tasks"]] or found["running"]),
        ("queue depth", f"{found['queue_depth']} ({found['pending']} ready, "
                        f"{found['scheduled']} scheduled)"),
        ("held locks", [lock["resource"] for lock in found["held_locks"]]),
        ("held", [f"{h['reason']}:{h['ref']}" for h in found["held"]]),
        ("workers", [w["id"] for w in found["workers"]]),
        ("last heartbeat", output.timestamp(found["last_heartbeat_at"])),
        ("last error", None if error is None else
         f"{output.timestamp(error['at'])} task {error['task_id']}: "
         f"{(error['error'] or {}).get('message')}"),
    ])


@app.command()
def remove(
    name: Name,
    force: Annotated[bool, typer.Option(
        "--force", help="Cancel its running tasks instead of refusing.")] = False,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Delete an agent: every version, its live config, capability switches, metrics and
    budgets (its events and audit rows stay). Refused while its tasks run, unless --force."""
    with options.client(url) as api:
        gone = api.delete_agent(name, force=force)
    if json:
        output.emit_json(gone)
        return
    typer.echo(f"deleted {name}: {gone['versions']} version(s), {gone['config']} config "
               f"override(s), {gone['metric_series']} metric series, "
               f"{gone['cancelled_tasks']} task(s) cancelled")


@app.command()
def summary(
    name: Name,
    window: Annotated[str, typer.Option(metavar="WINDOW",
                                        help="How far back: 1h, 24h, 7d.")] = "24h",
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Show an agent's success rate, p50/p95 duration, throughput, tokens and cost."""
    with options.client(url) as api:
        found = api.agent_summary(name, window)
    if json:
        output.emit_json(found)
        return
    rate = found["success_rate"]
    durations = found["duration_ms"]
    output.fields([
        ("agent", found["agent"]),
        ("window", f"{found['window']} (from {output.timestamp(found['from'])})"),
        ("tasks", ", ".join(f"{n} {k}" for k, n in sorted(found["tasks"].items())) or "none"),
        ("success rate", f"{rate:.1%}" if rate is not None else None),
        ("duration p50", f"{durations['p50']:.0f} ms" if durations["p50"] is not None else None),
        ("duration p95", f"{durations['p95']:.0f} ms" if durations["p95"] is not None else None),
        ("throughput", f"{found['throughput_per_hour']:.1f} tasks/h"),
        ("LLM calls", found["llm_calls"]),
        ("tokens", found["tokens"]["total"]),
        ("cost", round(found["cost"], 6)),
    ])
