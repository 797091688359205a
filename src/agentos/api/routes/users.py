"""/api/v1/users: accounts and their roles (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from agentos import users
from agentos.api.deps import StoreDep

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(store: StoreDep, body: users.UserIn) -> dict[str, Any]:
    return (await users.create(store, body)).to_dict()


@router.get("")
async def list_users(store: StoreDep) -> dict[str, Any]:
    return {"users": [u.to_dict() for u in await users.list_all(store)]}


@router.get("/{username}")
async def get(store: StoreDep, username: str) -> dict[str, Any]:
    return (await users.get(store, username)).to_dict()


@router.patch("/{username}")
async def patch(store: StoreDep, username: str, body: users.UserPatch) -> dict[str, Any]:
    """Change email, role, active or (a reset) password; disabling or a new password
    revokes the user's tokens."""
    return (await users.change(store, username, body)).to_dict()


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(store: StoreDep, username: str) -> None:
    await users.remove(store, username)
