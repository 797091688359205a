"""``agentos models``: the model registry, through the server at AGENTOS_URL."""

from __future__ import annotations

import json as json_
from typing import Annotated, Any

import typer

from agentos.cli import options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Register, list, deploy and archive ML models.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                     help="The model's name.")]
Version = Annotated[str, typer.Argument(metavar="VERSION", show_default=False,
                                        help="The model's version.")]
COLUMNS = [("NAME", "name"), ("VERSION", "version"), ("STATUS", "status"), ("TYPE", "type"),
           ("FRAMEWORK", "framework"), ("METRICS", "metrics"), ("REGISTERED", "created_at")]


@app.command()
def register(
    name: Name,
    version: Version,
    type: Annotated[str, typer.Option(metavar="TYPE", show_default=False,
                                      help="e.g. classification, regression, llm.")],
    framework: Annotated[str | None, typer.Option(
        metavar="NAME", show_default=False, help="e.g. pytorch, scikit-learn.")] = None,
    artifact_uri: Annotated[str | None, typer.Option(
        metavar="URI", show_default=False, help="Where the trained artifact is.")] = None,
    metrics: Annotated[str | None, typer.Option(
        metavar="JSON", show_default=False, help="Evaluation metrics, a JSON object.")] = None,
    config: Annotated[str | None, typer.Option(
        metavar="JSON", show_default=False, help="Serving config, a JSON object.")] = None,
    description: Annotated[str | None, typer.Option(
        metavar="TEXT", show_default=False, help="What the model is for.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Register a model version (it starts in training)."""
    with options.client(url) as api:
        model = api.register_model(name, version, type, framework=framework,
                                   artifact_uri=artifact_uri, description=description,
                                   metrics=_object("--metrics", metrics),
                                   config=_object("--config", config))
    if json:
        output.emit_json(model)
    else:
        typer.echo(f"registered {name} {version} (training)")


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Option(metavar="NAME", show_default=False,
                                             help="Only this model's versions.")] = None,
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", show_default=False, help="training, deployed or archived.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List model versions in registration order."""
    found: list[dict[str, Any]] = []
    with options.client(url) as api:
        after = None
        while True:
            page = api.list_models(name=name, status=status, after=after)
            found += page["models"]
            if (after := page["next_after"]) is None:
                break
    if json:
        output.emit_json(found)
    else:
        output.table([_row(m) for m in found], COLUMNS, empty="no models")


@app.command()
def show(name: Name, version: Annotated[str | None, typer.Argument(
        metavar="VERSION", show_default=False, help="One version (default: all).")] = None,
         json: options.Json = False, url: options.Url = None) -> None:
    """Show a model's versions, or one version."""
    with options.client(url) as api:
        found = api.get_model_version(name, version) if version else api.get_model(name)
    if json:
        output.emit_json(found)
    elif version:
        output.fields([(k, found[k]) for k in ("name", "version", "status", "type", "framework",
                                               "artifact_uri", "metrics", "config",
                                               "description", "created_by", "created_at",
                                               "deployed_at", "archived_at")])
    else:
        typer.echo(f"deployed: {', '.join(found['deployed']) or '-'}")
        output.table([_row(m) for m in found["versions"]], COLUMNS)


@app.command()
def deploy(name: Name, version: Version, json: options.Json = False,
           url: options.Url = None) -> None:
    """Deploy a version; the one deployed before is archived (unless the server's
    AGENTOS_MODEL_DEPLOY_POLICY is many)."""
    with options.client(url) as api:
        model = api.deploy_model(name, version)
    output.answer(model, json, f"{name} {version}: {model['status']}")


@app.command()
def archive(name: Name, version: Version, json: options.Json = False,
            url: options.Url = None) -> None:
    """Retire a version for good."""
    with options.client(url) as api:
        model = api.archive_model(name, version)
    output.answer(model, json, f"{name} {version}: {model['status']}")


def _row(model: dict[str, Any]) -> dict[str, Any]:
    return {**model, "created_at": output.timestamp(model["created_at"])}


def _object(option: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json_.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{option} is not JSON: {exc}", code="bad_json") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} must be a JSON object", code="bad_json")
    return value
