"""/api/v1/sessions: who is signed in (login tokens, never their secrets); admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from agentos import sessions
from agentos.api.deps import StoreDep

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.get("")
async def list_sessions(store: StoreDep, include_ended: bool = False,
                        username: Annotated[str | None, Query(max_length=100)] = None,
                        before: Annotated[str | None, Query(max_length=36)] = None,
                        limit: Annotated[int, Query(ge=1, le=sessions.MAX_PAGE)] = 100
                        ) -> dict[str, Any]:
    """Login sessions, newest first: live ones (``include_ended`` adds revoked and
    expired ones), with their user, expiry and last use; page with ``before`` = the
    previous page's ``next_before``."""
    found, next_before = await sessions.list_sessions(store, include_ended, username,
                                                      before, limit)
    return {"sessions": found, "next_before": next_before}


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end(store: StoreDep, session_id: Annotated[str, Path(max_length=36)]) -> None:
    """End a session: its token is refused from then on, on every server within
    AGENTOS_AUTH_CACHE_S."""
    await sessions.end(store, session_id)
