"""Logging in (SPEC §2.11): a password for a login token, with repeated failures slowed.

Failures are counted per user and per client address in the database, so
every server sees them. From ``slow_after`` failures on, each attempt waits
longer before its answer (doubling up to ``max_delay_s``); at ``max_failures``
the user or address is refused (429) for ``lockout_s``. The count starts over
after the lockout, after ``window_s`` without a failure, and on success: an
attacker can hold an account shut for a while, never for good.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, tokens
from agentos.errors import RateLimited, Unauthorized
from agentos.store import Store
from agentos.store.columns import UTCDateTime, utcnow
from agentos.store.tables import login_failures, users
from agentos.users import User, verify_password

f = login_failures.c


@dataclass(frozen=True)
class Policy:
    slow_after: int = 3  # failures before answers slow down
    max_failures: int = 10  # failures before a lockout
    lockout_s: float = 300.0
    max_delay_s: float = 2.0
    window_s: float = 900.0  # a quiet spell this long forgets earlier failures
    base_delay_s: float = 0.25


def delay(policy: Policy, failures: int) -> float:
    """Seconds to wait before answering an attempt that follows ``failures`` failures."""
    if failures < policy.slow_after:
        return 0.0
    return float(min(policy.max_delay_s,
                     policy.base_delay_s * 2 ** (failures - policy.slow_after)))


def counted(policy: Policy, failures: int, last_failed_at: datetime, locked_until: datetime | None,
            now: datetime) -> int:
    """The failures that still count at ``now`` (a lockout or a quiet window resets them)."""
    if locked_until is not None and locked_until <= now:
        return 0
    if (now - last_failed_at).total_seconds() > policy.window_s:
        return 0
    return failures


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: datetime
    user: User


def _keys(username: str, ip: str | None) -> list[str]:
    return [f"user:{username.lower()}", *([f"ip:{ip}"] if ip else [])]


async def login(store: Store, username: str, password: str, ip: str | None,
                policy: Policy, lifetime_s: float) -> Login:
    """A login token for a right password; 401 otherwise, 429 while locked out."""
    keys = _keys(username, ip)
    async with store.read() as conn:
        now = (await conn.execute(select(utcnow()))).scalar_one()
        rows = (await conn.execute(select(login_failures).where(f.key.in_(keys)))).all()
        user = (await conn.execute(select(users).where(users.c.username == username))).first()
    locked = [r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now]
    if locked:
        wait = max(1, int((max(locked) - now).total_seconds()) + 1)
        raise RateLimited(f"too many failed logins; try again in {wait} s",
                          code="login_locked", details={"retry_after_s": wait})
    failures = max([counted(policy, r.failures, r.last_failed_at, r.locked_until, now)
                    for r in rows] or [0])
    if pause := delay(policy, failures):
        await asyncio.sleep(pause)
    right = await verify_password(user.password_hash if user else None, password)
    entry = audit.pending()
    if entry is not None and user is not None:
        entry.actor, entry.actor_role, entry.resource_id = (
            f"user:{user.username}", user.role, user.username)
    if not right:
        if entry is not None:
            entry.outcome = audit.Outcome.DENIED
            entry.details = {"reason": "wrong username or password", "username": username[:63]}
        await _count_failure(store, keys, policy, now)
        raise Unauthorized("wrong username or password", code="login_failed")
    assert user is not None
    if not user.active:
        if entry is not None:
            entry.outcome, entry.details = audit.Outcome.DENIED, {"reason": "user disabled"}
        await audit.record_pending(store)
        raise Unauthorized(f"user {user.username} is disabled", code="user_disabled")
    async with store.write() as conn:
        await conn.execute(delete(login_failures).where(f.key.in_(keys)))
        await conn.execute(update(users).where(users.c.id == user.id)
                           .values(last_login_at=utcnow()))
        token, expires = await tokens.issue_session_in(conn, user.id, user.username, lifetime_s)
        if entry is not None:
            entry.details = {"expires_at": expires.isoformat()}
        row = (await conn.execute(select(users).where(users.c.id == user.id))).one()
    return Login(token, expires, User.from_row(row))


async def _count_failure(store: Store, keys: list[str], policy: Policy, now: datetime) -> None:
    """One more failure for each key, counted atomically (parallel guesses all count)."""
    stale = now - timedelta(seconds=policy.window_s)
    at = literal(now, UTCDateTime)
    async with store.write() as conn:
        for key in keys:
            insert_ = (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(
                login_failures).values(key=key, failures=1, last_failed_at=now)
            restart = (f.last_failed_at < literal(stale, UTCDateTime)) | (
                f.locked_until.is_not(None) & (f.locked_until <= at))
            failures = (await conn.execute(insert_.on_conflict_do_update(
                index_elements=[f.key],
                set_={"failures": case((restart, 1), else_=f.failures + 1),
                      "last_failed_at": now,
                      "locked_until": case((restart, None), else_=f.locked_until)})
                .returning(f.failures))).scalar_one()
            if failures >= policy.max_failures:
                await _lock(conn, key, now + timedelta(seconds=policy.lockout_s))


async def _lock(conn: AsyncConnection, key: str, until: datetime) -> None:
    await conn.execute(update(login_failures).where(f.key == key).values(locked_until=until))

