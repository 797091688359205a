"""/api/v1/auth: log in for a token, who am I, log out, change my password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from agentos import logins, tokens, users
from agentos.api.access import COOKIE, PrincipalDep
from agentos.api.deps import SettingsDep, StoreDep
from agentos.api.schemas.users import Login, Me
from agentos.config import Settings
from agentos.errors import Forbidden

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=63)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    cookie: StrictBool = False  # also set the dashboard's HttpOnly cookie


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: users.Password


def policy(settings: Settings) -> logins.Policy:
    return logins.Policy(max_failures=settings.login_max_failures,
                         lockout_s=settings.login_lockout_s,
                         max_delay_s=settings.login_max_delay_s)


@router.post("/login", response_model=Login)
async def login(store: StoreDep, settings: SettingsDep, request: Request, response: Response,
                body: LoginIn) -> dict[str, Any]:
    """A login token for ``Authorization: Bearer``; it expires, and logout revokes it."""
    done = await logins.login(store, body.username, body.password,
                              request.client.host if request.client else None,
                              policy(settings), settings.token_ttl_s)
    if body.cookie:
        response.set_cookie(COOKIE, done.token, max_age=int(settings.token_ttl_s),
                            httponly=True, samesite="strict", path="/")
    return {"token": done.token, "expires_at": done.expires_at.isoformat(),
            "user": done.user.to_dict()}


@router.get("/me", response_model=Me)
async def me(store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """The caller: a user (through a login token) or an API key."""
    out = principal.to_dict()
    if principal.username:
        out["user"] = (await users.get(store, principal.username)).to_dict()
    return out


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(store: StoreDep, principal: PrincipalDep, response: Response) -> None:
    """Revoke the login token this request carries (an API key is revoked by an admin)."""
    if principal.kind != "session":
        raise Forbidden("an API key cannot log out; an admin revokes it", code="not_a_session")
    await tokens.revoke_session(store, principal.credential_id)
    response.delete_cookie(COOKIE, path="/")


@router.post("/password")
async def change_password(store: StoreDep, principal: PrincipalDep, body: PasswordIn
                          ) -> dict[str, Any]:
    """Change your own password: every token of yours is revoked; log in again."""
    if principal.user_id is None:
        raise Forbidden("only a user has a password", code="not_a_session")
    await users.change_password(store, principal.user_id, body.current_password,
                                body.new_password)
    return {"changed": True}
