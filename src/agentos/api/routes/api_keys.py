"""/api/v1/api-keys: credentials for workers and scripts, shown once (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from agentos import inputs, paging, tokens
from agentos.api.access import PrincipalDep
from agentos.api.deps import Limit, StoreDep
from agentos.api.schemas.users import ApiKeyPage, NewApiKey
from agentos.roles import Role

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])
DEFAULT_DAYS = 90


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role
    # expiry: a moment, or a number of days from now (90 unless ``never``)
    expires_at: Annotated[datetime | None, AfterValidator(inputs.in_the_future)] = None
    expires_in_days: Annotated[float, Field(gt=0, le=3650)] | None = None
    never_expires: StrictBool = False

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyIn:
        given = [self.expires_at is not None, self.expires_in_days is not None,
                 self.never_expires]
        if sum(given) > 1:
            raise ValueError("give one of expires_at, expires_in_days, never_expires")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone")
        return self

    def expiry(self) -> datetime | None:
        if self.never_expires:
            return None
        if self.expires_at is not None:
            return self.expires_at
        return datetime.now(UTC) + timedelta(days=self.expires_in_days or DEFAULT_DAYS)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewApiKey)
async def create(store: StoreDep, principal: PrincipalDep, body: KeyIn) -> dict[str, Any]:
    """A new key; ``key`` is in this answer only (store it now)."""
    key, described = await tokens.create_key(store, body.name, body.role, body.expiry(),
                                             principal.actor)
    return {**described, "key": key}


@router.get("", response_model=ApiKeyPage)
async def list_keys(store: StoreDep, include_revoked: bool = False, after: str | None = None,
                    limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """Keys oldest first (never their secrets); page with ``after`` = ``next_after``."""
    found, next_after = await tokens.list_keys(store, include_revoked, after, limit)
    return {"api_keys": found, "next_after": next_after}


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(store: StoreDep, key_id: str) -> None:
    """Revoke a key: every server refuses it within AGENTOS_AUTH_CACHE_S at most."""
    await tokens.revoke_key(store, key_id)
