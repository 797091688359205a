"""``agentos approvals``: what waits for a person's decision, through the server."""

from __future__ import annotations

from typing import Annotated

import typer

from agentos.cli import options, output

app = typer.Typer(help="List approvals, approve or reject them.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

ApprovalId = Annotated[str, typer.Argument(metavar="ID", show_default=False,
                                           help="The approval's id.")]
Comment = Annotated[str | None, typer.Option(
    "--comment", "-m", metavar="TEXT", show_default=False, help="Why (kept with it).")]
COLUMNS = [("ID", "id"), ("STATUS", "status"), ("ROLE", "role"), ("TITLE", "title"),
           ("RUN", "run_id"), ("STEP", "step"), ("EXPIRES", "expires_at"),
           ("DECIDED BY", "decided_by")]


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", help="pending, approved, rejected, expired or cancelled "
                               "(all: every one).")] = "pending",
    run_id: Annotated[str | None, typer.Option(metavar="RUN", show_default=False,
                                            help="Only this run's.")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=500,
                                       help="At most N approvals.")] = 50,
    before: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False,
        help="The page before this one: the approval a list said more follow from.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List approvals, newest first (pending ones by default); when more follow, says
    how to see them (on stderr)."""
    with options.client(url) as api:
        page = api.list_approvals(status=None if status == "all" else status, run_id=run_id,
                                  before=before, limit=limit)
    found = page["approvals"]
    if json:
        output.emit_json(found)
    else:
        output.table([{**a, "expires_at": output.timestamp(a["expires_at"])} for a in found],
                     COLUMNS, empty="no approvals")
    output.more_follow(ctx, "--before", page["next_before"])


@app.command()
def approve(approval_id: ApprovalId, comment: Comment = None, json: options.Json = False,
            url: options.Url = None) -> None:
    """Approve (needs the approval's role or higher)."""
    with options.client(url) as api:
        found = api.approve(approval_id, comment)
    output.answer(found, json, f"approval {found['id']} {found['status']} by {found['decided_by']}")


@app.command()
def reject(approval_id: ApprovalId, comment: Comment = None, json: options.Json = False,
           url: options.Url = None) -> None:
    """Reject (needs the approval's role or higher)."""
    with options.client(url) as api:
        found = api.reject(approval_id, comment)
    output.answer(found, json, f"approval {found['id']} {found['status']} by {found['decided_by']}")
