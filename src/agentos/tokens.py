"""Credentials: login tokens (a user's session) and API keys (a role, for workers and scripts).

Both are opaque bearer secrets sent as ``Authorization: Bearer ...``; only their
SHA-256 is stored (they are long random strings, so a slow hash adds nothing),
so resolving one is a single lookup on a unique index. A ``Resolver`` keeps
verified credentials for a few seconds; a revocation clears its cache at once
in this process and, through NOTIFY on PostgreSQL, in every other server. A
lost notification is bounded by the cache's lifetime (``AGENTOS_AUTH_CACHE_S``).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, ids, paging
from agentos.errors import NotFound, Unauthorized, Unavailable
from agentos.roles import Role
from agentos.store import Store
from agentos.store.columns import database_now, utcnow
from agentos.store.tables import credentials, users

CHANNEL = "agentos_access"  # notified by every commit that revokes a credential
SESSION_MARK = "aos_"
KEY_MARK = "aok_"
LAST_USED_EVERY = 60.0  # seconds: last_used_at is kept to about this precision
CACHE_LIMIT = 10_000  # cached credentials; past it the cache starts over
c = credentials.c


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user through a login token, or an API key."""

    kind: str  # session | api_key
    credential_id: str
    role: Role
    username: str | None = None
    user_id: int | None = None
    prefix: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.username}" if self.username else f"key:{self.prefix}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "actor": self.actor, "role": str(self.role),
                "username": self.username, "key_prefix": self.prefix}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_session_in(conn: AsyncConnection, user_id: int, username: str,
                           lifetime_s: float) -> tuple[str, datetime]:
    """A new login token for the user, within the caller's transaction."""
    token = SESSION_MARK + secrets.token_urlsafe(32)
    now = await database_now(conn)
    expires = now + timedelta(seconds=lifetime_s)
    await conn.execute(insert(credentials).values(
        id=ids.uuid7(), kind="session", secret_hash=digest(token), user_id=user_id,
        created_by=f"user:{username}", expires_at=expires, last_used_at=now))
    return token, expires


async def create_key(store: Store, name: str, role: Role, expires_at: datetime | None,
                     created_by: str) -> tuple[str, dict[str, Any]]:
    """A new API key: the secret (shown this once) and its stored description."""
    prefix = KEY_MARK + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    key_id = ids.uuid7()
    async with store.write() as conn:
        await conn.execute(insert(credentials).values(
            id=key_id, kind="api_key", secret_hash=digest(key), prefix=prefix, name=name,
            role=str(role), created_by=created_by, expires_at=expires_at))
        audit.names([key_id])
    return key, await get_key(store, key_id)


def _key_dict(row: Any) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {"id": row.id, "name": row.name, "prefix": row.prefix, "role": row.role,
            "created_by": row.created_by, "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at), "last_used_at": iso(row.last_used_at),
            "revoked_at": iso(row.revoked_at)}


async def get_key(store: Store, key_id: str) -> dict[str, Any]:
    async with store.read() as conn:
        row = (await conn.execute(select(credentials).where(
            c.id == key_id, c.kind == "api_key"))).first()
    if row is None:
        raise NotFound(f"no API key {key_id}", code="api_key_not_found")
    return _key_dict(row)


async def list_keys(store: Store, include_revoked: bool = False, after: str | None = None,
                    limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """API keys oldest first (their ids grow with time) after ``after``, at most
    ``limit``; and the next page's cursor."""
    stmt = select(credentials).where(c.kind == "api_key")
    if not include_revoked:
        stmt = stmt.where(c.revoked_at.is_(None))
    async with store.read() as conn:
        rows, next_after = await paging.keyed(conn, stmt, c.id, after, limit)
    return [_key_dict(r) for r in rows], next_after


async def revoke_key(store: Store, key_id: str) -> None:
    async with store.write() as conn:
        done = await conn.execute(update(credentials).where(
            c.id == key_id, c.kind == "api_key", c.revoked_at.is_(None)).values(
            revoked_at=utcnow()))
        if done.rowcount == 0:
            await get_key(store, key_id)  # 404 when there is no such key; else revoked before
        await store.notify(conn, CHANNEL)


async def revoke_session(store: Store, credential_id: str) -> None:
    async with store.write() as conn:
        await conn.execute(update(credentials).where(
            c.id == credential_id, c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        await store.notify(conn, CHANNEL)


async def revoke_user_in(store: Store, conn: AsyncConnection, user_id: int) -> None:
    """Revoke every login token of a user (disabled, deleted, new password)."""
    await conn.execute(update(credentials).where(
        c.user_id == user_id, c.kind == "session", c.revoked_at.is_(None)).values(
        revoked_at=utcnow()))
    await store.notify(conn, CHANNEL)


class Resolver:
    """Bearer secret -> ``Principal``, with a short cache of verified credentials."""

    def __init__(self, store: Store, cache_s: float) -> None:
        self.store = store
        self.cache_s = cache_s
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._revoked = store.wakeup(CHANNEL)

    async def resolve(self, secret: str, *, fresh: bool = False) -> Principal:
        """The credential's principal (401 when invalid); ``fresh``: looked up now, not
        taken from the cache (a long-lived request checking it is still valid)."""
        if self._revoked.is_set():  # a revocation committed here or, by NOTIFY, elsewhere
            self._revoked.clear()
            self._cache.clear()
        key = digest(secret)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic() and not fresh:
            return hit[0]
        principal, valid_s = await self._lookup(key)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (principal, time.monotonic() + min(self.cache_s, valid_s))
        return principal

    async def _lookup(self, key: str) -> tuple[Principal, float]:
        u = users.c
        async with self.store.read() as conn:
            row = (await conn.execute(
                select(c.id, c.kind, c.role, c.prefix, c.user_id, c.expires_at, c.revoked_at,
                       c.last_used_at, u.username, u.role.label("user_role"), u.active,
                       utcnow().label("now"))
                .select_from(credentials.outerjoin(users, users.c.id == c.user_id))
                .where(c.secret_hash == key))).first()
        if row is None:
            raise Unauthorized("the credential is not valid", code="invalid_credential")
        if row.revoked_at is not None:
            raise Unauthorized("the credential was revoked", code="credential_revoked")
        if row.expires_at is not None and row.expires_at <= row.now:
            raise Unauthorized("the credential has expired", code="credential_expired")
        if row.kind == "session" and not row.active:
            raise Unauthorized("the user is disabled", code="user_disabled")
        if row.last_used_at is None or (row.now - row.last_used_at).total_seconds() > \
                LAST_USED_EVERY:
            # a note, not a change: a database that takes no writes still serves reads
            with contextlib.suppress(Unavailable):
                async with self.store.write() as conn:
                    await conn.execute(update(credentials).where(c.id == row.id)
                                       .values(last_used_at=utcnow()))
        valid_s = ((row.expires_at - row.now).total_seconds() if row.expires_at is not None
                   else float("inf"))
        if row.kind == "session":
            return Principal("session", row.id, Role(row.user_role), row.username,
                             row.user_id), valid_s
        return Principal("api_key", row.id, Role(row.role), prefix=row.prefix), valid_s

    def forget(self) -> None:
        self._cache.clear()
