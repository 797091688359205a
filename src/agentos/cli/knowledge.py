"""``agentos knowledge``: the knowledge base, through the server at AGENTOS_URL."""

from __future__ import annotations

import json as json_
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from agentos.cli import options, output
from agentos.errors import AgentOSError, InvalidInput

app = typer.Typer(help="Write, read, search and import knowledge-base documents.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Namespace = Annotated[str, typer.Argument(metavar="NAMESPACE", show_default=False,
                                          help="The document's namespace, e.g. runbooks.")]
Key = Annotated[str, typer.Argument(metavar="KEY", show_default=False,
                                    help="The document's key in its namespace.")]
Tags = Annotated[list[str] | None, typer.Option(
    "--tag", metavar="TAG", show_default=False, help="A tag; repeatable.")]
IMPORT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
SEARCH_COLUMNS = [("NAMESPACE", "namespace"), ("KEY", "key"), ("SCORE", "score"),
                  ("TITLE", "title"), ("SNIPPET", "snippet")]
LIST_COLUMNS = [("NAMESPACE", "namespace"), ("KEY", "key"), ("TITLE", "title"),
                ("TAGS", "tags"), ("UPDATED", "updated_at")]


@app.command()
def put(
    namespace: Namespace,
    key: Key,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", metavar="PATH", show_default=False,
        help="Read the content from this file ('-': stdin).")] = None,
    content: Annotated[str | None, typer.Option(
        metavar="TEXT", show_default=False, help="The content itself.")] = None,
    title: Annotated[str, typer.Option(metavar="TEXT", help="The document's title.")] = "",
    tag: Tags = None,
    metadata: Annotated[str | None, typer.Option(
        metavar="JSON", show_default=False, help="Metadata, a JSON object.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Create or replace a document (content from --content, --file or stdin)."""
    if (content is None) == (file is None):
        raise InvalidInput("give the content with either --content TEXT or --file PATH",
                           code="no_content")
    text = content if content is not None else _read(file or "-")
    with options.client(url) as api:
        doc = api.put_document(namespace, key, text, title=title, tags=tag or [],
                               metadata=_object(metadata))
    if json:
        output.emit_json(doc)
    else:
        typer.echo(f"stored {namespace}/{key}")


@app.command()
def get(namespace: Namespace, key: Key, json: options.Json = False,
        url: options.Url = None) -> None:
    """Print a document's content (--json: the whole document)."""
    with options.client(url) as api:
        doc = api.get_document(namespace, key)
    if json:
        output.emit_json(doc)
    else:
        typer.echo(doc["content"])


@app.command()
def rm(namespace: Namespace, key: Key, json: options.Json = False,
       url: options.Url = None) -> None:
    """Delete a document."""
    with options.client(url) as api:
        api.delete_document(namespace, key)
    output.answer({"deleted": {"namespace": namespace, "key": key}}, json,
                  f"deleted {namespace}/{key}")


@app.command()
def search(
    ctx: typer.Context,
    q: Annotated[str | None, typer.Argument(
        metavar="QUERY", show_default=False,
        help="Words to search for; without it, list documents by namespace and key.")] = None,
    namespace: Annotated[str | None, typer.Option(
        metavar="NAMESPACE", show_default=False, help="Only this namespace.")] = None,
    tag: Tags = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many.")] = 20,
    cursor: Annotated[str | None, typer.Option(
        metavar="CURSOR", show_default=False,
        help="The next page: the cursor a previous page's 'more follow' names.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Search the knowledge base, best matches first; when more follow, says how to see
    them (on stderr)."""
    with options.client(url) as api:
        page = api.search_knowledge(q, namespace=namespace, tags=tag, cursor=cursor,
                                    limit=limit)
    if json:
        output.emit_json(page)
        output.more_follow(ctx, "--cursor", page.get("next_cursor"))
        return
    if page.get("warning"):
        typer.echo(f"warning: {page['warning']}", err=True)
    rows = [{**d, "score": f"{d['score']:.4g}" if d.get("score") is not None else None,
             "snippet": " ".join((d.get("snippet") or "").split()),
             "updated_at": output.timestamp(d["updated_at"])} for d in page["documents"]]
    output.table(rows, SEARCH_COLUMNS if q else LIST_COLUMNS, empty="no documents")
    output.more_follow(ctx, "--cursor", page.get("next_cursor"))


@app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", show_default=False, exists=True, file_okay=False,
        help=f"Import every {', '.join(IMPORT_SUFFIXES)} file under DIR.")],
    namespace: Annotated[str, typer.Option(
        metavar="NAMESPACE", help="The namespace to import into.")] = "default",
    tag: Tags = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Import a directory of text files, one document each.

    A file's key is its path under DIR with '/' written as ':' (guides/setup.md
    becomes guides:setup.md); its title is its first Markdown heading, else its
    name. Importing again replaces the documents. Stops at the first refusal.
    """
    files = sorted(p for p in directory.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMPORT_SUFFIXES)
    if not files:
        raise InvalidInput(f"no {', '.join(IMPORT_SUFFIXES)} files under {directory}",
                           code="nothing_to_import")
    keys: list[str] = []
    with options.client(url) as api, typer.progressbar(
            files, label=f"importing into {namespace}", file=sys.stderr) as bar:
        for path in bar:
            key = ":".join(path.relative_to(directory).parts)
            text = _read(str(path))
            try:
                api.put_document(namespace, key, text, title=_title(text, path),
                                 tags=tag or [])
            except AgentOSError as exc:
                raise type(exc)(f"{path}: {exc.message}", code=exc.code,
                                details=exc.details) from None
            keys.append(key)
    output.answer({"namespace": namespace, "imported": len(keys), "keys": keys}, json,
                  f"imported {len(keys)} documents into {namespace}")


def _title(text: str, path: Path) -> str:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip()[:500]
    return path.stem[:500]


def _read(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        return data.decode("utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", code="unreadable") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", code="bad_encoding") from None


def _object(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json_.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--metadata is not JSON: {exc}", code="bad_json") from None
    if not isinstance(value, dict):
        raise InvalidInput("--metadata must be a JSON object", code="bad_json")
    return value
