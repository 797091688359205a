"""/api/v1/users: accounts and their roles (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from agentos import paging, users
from agentos.api.deps import Limit, StoreDep
from agentos.api.schemas.users import User, UserPage

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=User)
async def create(store: StoreDep, body: users.UserIn) -> dict[str, Any]:
    return (await users.create(store, body)).to_dict()


@router.get("", response_model=UserPage)
async def list_users(store: StoreDep, after: str | None = None,
                     limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """Users by name; page with ``after`` = the previous ``next_after``."""
    found, next_after = await users.page(store, after, limit)
    return {"users": [u.to_dict() for u in found], "next_after": next_after}


@router.get("/{username}", response_model=User)
async def get(store: StoreDep, username: str) -> dict[str, Any]:
    return (await users.get(store, username)).to_dict()


@router.patch("/{username}", response_model=User)
async def patch(store: StoreDep, username: str, body: users.UserPatch) -> dict[str, Any]:
    """Change email, role, active or (a reset) password; disabling or a new password
    revokes the user's tokens."""
    return (await users.change(store, username, body)).to_dict()


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(store: StoreDep, username: str) -> None:
    await users.remove(store, username)
