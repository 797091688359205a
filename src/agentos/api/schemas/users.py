"""Users, API keys and logins."""

from __future__ import annotations

from agentos.api.schemas.common import Model, Page, Timestamp


class User(Model):
    username: str
    email: str | None
    role: str  # admin, operator, viewer
    active: bool
    created_at: Timestamp
    updated_at: Timestamp
    last_login_at: Timestamp | None


class UserPage(Page[User]):
    """Users by name."""

    ITEMS = "users"
    CURSOR = ("next_after", "after")
    users: list[User]
    next_after: str | None = None


class ApiKey(Model):
    """An API key, never its secret."""

    id: str
    name: str | None
    prefix: str | None  # the visible part, e.g. aok_1a2b3c4d
    role: str | None
    created_by: str
    created_at: Timestamp | None
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class NewApiKey(ApiKey):
    """A key just made: ``key``, its secret, is in this answer only."""

    key: str


class ApiKeyPage(Page[ApiKey]):
    """Keys, oldest first."""

    ITEMS = "api_keys"
    CURSOR = ("next_after", "after")
    api_keys: list[ApiKey]
    next_after: str | None = None


class Login(Model):
    token: str
    expires_at: Timestamp
    user: User


class Me(Model):
    """Who a credential is: a user (through a login token) or an API key."""

    kind: str  # session, api_key
    actor: str  # user:NAME or key:PREFIX
    role: str
    username: str | None
    key_prefix: str | None
    user: User | None = None
