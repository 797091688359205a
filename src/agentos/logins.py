"""Logging in (SPEC §2.11): a password for a login token, with repeated failures slowed.

Attempts are counted per user and per client address in the database, so every
server sees them, and each attempt is counted before its password is looked at,
in one statement (``store.logins.take``): however many guesses arrive at once,
each gets its own number, and those past ``max_failures`` are refused (429) for
``lockout_s`` without a password check. From ``slow_after`` earlier attempts on,
each waits longer before its answer (doubling up to ``max_delay_s``). A right
password clears the count; so does the end of a lockout and ``window_s``
without an attempt: an attacker can hold an account shut for a while, never for
good.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from agentos import audit, tokens
from agentos.errors import RateLimited, Unauthorized
from agentos.store import Store
from agentos.store import logins as counters
from agentos.store.columns import utcnow
from agentos.store.tables import users
from agentos.users import User, verify_password


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
    async with store.write() as conn:
        taken = await counters.take(conn, keys, max_failures=policy.max_failures,
                                    lockout_s=policy.lockout_s, window_s=policy.window_s)
        user = (await conn.execute(select(users).where(users.c.username == username))).first()
        store.nothing_changed(conn)  # the request's audit row waits for the outcome
    if taken.locked_until is not None:
        wait = max(1, int((taken.locked_until - taken.now).total_seconds()) + 1)
        raise RateLimited(f"too many failed logins; try again in {wait} s",
                          code="login_locked", details={"retry_after_s": wait})
    if pause := delay(policy, taken.attempts - 1):
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
        await audit.record_pending(store)
        raise Unauthorized("wrong username or password", code="login_failed")
    assert user is not None
    if not user.active:
        if entry is not None:
            entry.outcome, entry.details = audit.Outcome.DENIED, {"reason": "user disabled"}
        await audit.record_pending(store)
        raise Unauthorized(f"user {user.username} is disabled", code="user_disabled")
    async with store.write() as conn:
        await counters.forget(conn, keys)
        await conn.execute(update(users).where(users.c.id == user.id)
                           .values(last_login_at=utcnow()))
        token, expires = await tokens.issue_session_in(conn, user.id, user.username, lifetime_s)
        if entry is not None:
            entry.details = {"expires_at": expires.isoformat()}
        row = (await conn.execute(select(users).where(users.c.id == user.id))).one()
    return Login(token, expires, User.from_row(row))
