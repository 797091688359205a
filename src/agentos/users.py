"""Users (SPEC §2.11): a username, a role, an argon2id password, an active flag.

Passwords are hashed with argon2id at OWASP's recommended cost (19 MiB, two
passes, one lane) in a worker thread, so a login never stalls the event loop;
neither the password nor its hash ever leaves this module. Disabling a user
or changing their password revokes their login tokens; the last active admin
can be neither demoted, disabled nor deleted.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import argon2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, paging, tokens
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.roles import Role
from agentos.store import Store
from agentos.store.columns import utcnow
from agentos.store.tables import users

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
FIRST_ADMIN = "admin"
# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1
HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1,
                               type=argon2.Type.ID)
u = users.c



def _check_email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError(f"{value!r} is not an email address")
    return value


Password = Annotated[str, Field(min_length=8, max_length=1024)]
Email = Annotated[str, Field(max_length=255), AfterValidator(_check_email)]


class UserIn(BaseModel):
    """A user to create."""

    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(max_length=63)]
    password: Password
    email: Email | None = None
    role: Role = Role.VIEWER
    active: StrictBool = True

    @field_validator("username")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


class UserPatch(BaseModel):
    """Changes to a user; a new ``password`` (an admin's reset) revokes their tokens."""

    model_config = ConfigDict(extra="forbid")
    email: Email | None = None
    role: Role | None = None
    active: StrictBool | None = None
    password: Password | None = None


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"username {name!r} must match {NAME.pattern}")
    return name


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str | None
    role: Role
    active: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(row.id, row.username, row.email, Role(row.role), row.active, row.created_at,
                   row.updated_at, row.last_login_at)

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "email": self.email, "role": str(self.role),
                "active": self.active, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at
                else None}


# -------------------------------------------------------------- passwords


@functools.cache
def _dummy() -> str:
    """A hash to verify against when the user is unknown: the answer takes as long."""
    return HASHER.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (an unknown user) it costs the same and fails."""
    def check() -> bool:
        try:
            return HASHER.verify(password_hash or _dummy(), password) and \
                password_hash is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await asyncio.to_thread(check)


# ------------------------------------------------------------------ users


async def create(store: Store, new: UserIn) -> User:
    hashed = await hash_password(new.password)
    async with store.write() as conn:
        if (await conn.execute(select(u.id).where(u.username == new.username))).first():
            raise Conflict(f"user {new.username} exists", code="user_exists")
        await conn.execute(insert(users).values(
            username=new.username, email=new.email, role=str(new.role), active=new.active,
            password_hash=hashed))
    return await get(store, new.username)


async def get(store: Store, username: str) -> User:
    async with store.read() as conn:
        row = (await conn.execute(select(users).where(u.username == username))).first()
    if row is None:
        raise NotFound(f"no user named {username}", code="user_not_found")
    return User.from_row(row)


async def list_all(store: Store) -> list[User]:
    return (await page(store, limit=None))[0]


async def page(store: Store, after: str | None = None, limit: int | None = paging.DEFAULT_LIMIT
               ) -> tuple[list[User], str | None]:
    """Users by name after ``after``, at most ``limit``; and the next page's cursor."""
    async with store.read() as conn:
        rows, next_after = await paging.keyed(conn, select(users), u.username, after, limit)
    return [User.from_row(r) for r in rows], next_after


async def _row_for_update(conn: AsyncConnection, username: str) -> Any:
    row = (await conn.execute(select(users).where(u.username == username)
                              .with_for_update())).first()
    if row is None:
        raise NotFound(f"no user named {username}", code="user_not_found")
    return row


async def _keep_an_admin(conn: AsyncConnection, row: Any) -> None:
    """Refuse to leave the installation without an active admin."""
    if row.role != Role.ADMIN or not row.active:
        return
    others = (await conn.execute(select(func.count()).select_from(users).where(
        u.role == str(Role.ADMIN), u.active.is_(True), u.id != row.id))).scalar_one()
    if others == 0:
        raise Conflict(f"{row.username} is the last active admin", code="last_admin")


async def change(store: Store, username: str, patch: UserPatch) -> User:
    """Apply ``patch``; disabling the user or setting a password revokes their tokens."""
    values: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"password"})
    if any(k in values and values[k] is None for k in ("role", "active")):
        raise InvalidInput("role and active cannot be null", code="bad_patch")
    if patch.password is not None:
        values["password_hash"] = await hash_password(patch.password)
        values["password_changed_at"] = utcnow()
    async with store.write() as conn:
        row = await _row_for_update(conn, username)
        if values.get("role", Role.ADMIN) != Role.ADMIN or values.get("active") is False:
            await _keep_an_admin(conn, row)
        if values:
            await conn.execute(update(users).where(u.id == row.id)
                               .values(**values, updated_at=utcnow()))
        if values.get("active") is False or "password_hash" in values:
            await tokens.revoke_user_in(store, conn, row.id)
        elif "role" in values:  # cached sessions carry the old role: let them go
            await store.notify(conn, tokens.CHANNEL)
    return await get(store, username)


async def change_password(store: Store, user_id: int, current: str, new: str) -> str:
    """The user's own change: check ``current``, set ``new``, revoke every token.
    Returns the username."""
    async with store.read() as conn:
        row = (await conn.execute(select(users).where(u.id == user_id))).first()
    if row is None or not await verify_password(row.password_hash, current):
        raise InvalidInput("the current password is wrong", code="wrong_password")
    hashed = await hash_password(new)
    async with store.write() as conn:
        await conn.execute(update(users).where(u.id == user_id).values(
            password_hash=hashed, password_changed_at=utcnow(), updated_at=utcnow()))
        await tokens.revoke_user_in(store, conn, user_id)
    return str(row.username)


async def reset_password(store: Store, username: str, actor: str = "local") -> str:
    """Set a new random password for ``username`` straight in the database, for whoever
    can open it (``agentos users reset-password``: no server, no token), and return it to
    be shown once. Their tokens are revoked; the audit row names the user, its actor is
    ``actor``. An unknown user is refused (NotFound), writing nothing."""
    chosen = secrets.token_urlsafe(12)
    hashed = await hash_password(chosen)
    async with store.write() as conn:
        row = await _row_for_update(conn, username)
        await conn.execute(update(users).where(u.id == row.id).values(
            password_hash=hashed, password_changed_at=utcnow(), updated_at=utcnow()))
        await tokens.revoke_user_in(store, conn, row.id)
        await audit.append_in(conn, audit.Entry(
            actor=actor, action="users.reset_password", resource_type="users",
            resource_id=username, details={"through": "database"}))
    return chosen


async def remove(store: Store, username: str) -> None:
    """Delete a user; their login tokens go with them."""
    async with store.write() as conn:
        row = await _row_for_update(conn, username)
        await _keep_an_admin(conn, row)
        await tokens.revoke_user_in(store, conn, row.id)
        await conn.execute(delete(users).where(u.id == row.id))


async def ensure_admin(store: Store, password: str | None) -> str | None:
    """First start: with no user at all, create ``admin`` with ``password``, or a
    random one, which is returned (to be shown once). None when users exist."""
    async with store.read() as conn:
        if (await conn.execute(select(u.id).limit(1))).first() is not None:
            return None
    chosen = password or secrets.token_urlsafe(12)
    hashed = await hash_password(chosen)
    async with store.write() as conn:
        # two servers starting at once: the second sees the first's admin here
        await store.lock_table(conn, users.name)
        if (await conn.execute(select(u.id).limit(1))).first() is not None:
            return None
        await conn.execute(insert(users).values(
            username=FIRST_ADMIN, role=str(Role.ADMIN), active=True, password_hash=hashed))
    return None if password else chosen
