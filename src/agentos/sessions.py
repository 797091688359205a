"""Login sessions: who is signed in, since when, until when; an admin can end one.

A session is the login token ``POST /api/v1/auth/login`` returns (``tokens``); API
keys are the other kind of credential and are listed by ``/api/v1/api-keys``.
Ending a session revokes its token: every server refuses it within
AGENTOS_AUTH_CACHE_S (at once on the server that ended it, and by NOTIFY on
PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentos import paging, tokens
from agentos.errors import InvalidInput, NotFound
from agentos.store import Store
from agentos.store import sessions as store_sessions

MAX_PAGE = 500


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def list_sessions(store: Store, include_ended: bool = False,
                        username: str | None = None, before: str | None = None,
                        limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
    """Login sessions newest first (live ones unless ``include_ended``), those below
    ``before``; never a secret. And the next page's cursor."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    async with store.read() as conn:
        rows, next_before = paging.cut(await store_sessions.page(
            conn, include_ended, username, before, paging.fetch(limit)), limit,
            lambda r: str(r.id))
    return [{"id": r.id, "username": r.username, "role": r.role,
             "created_at": _iso(r.created_at), "expires_at": _iso(r.expires_at),
             "last_used_at": _iso(r.last_used_at), "revoked_at": _iso(r.revoked_at),
             "live": r.revoked_at is None and not r.expired} for r in rows], next_before


async def end(store: Store, session_id: str) -> str:
    """End a live session (its token is refused from then on); the user it was of."""
    async with store.write() as conn:
        username = await store_sessions.end(conn, session_id)
        if username is None:
            raise NotFound(f"no live session {session_id}", code="session_not_found",
                           details={"id": session_id})
        await store.notify(conn, tokens.CHANNEL)
    return username
