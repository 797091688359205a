"""The one error root of AgentOS.

Every failure a user can cause or meet is an ``AgentOSError`` with a stable
``code``, a human ``message`` and structured ``details``. The API turns it into
``{"error": {code, message, details}}`` with ``status``; the CLI into one line
and exit code 2.

    AgentOSError
    ├── InvalidInput        400  the request itself is wrong
    │   └── ValidationFailed 422 a document failed validation (all errors listed)
    ├── Unauthorized        401
    ├── Forbidden           403
    ├── NotFound            404
    ├── Conflict            409  the state of the system forbids it
    ├── PayloadTooLarge     413
    ├── UnsupportedMedia    415
    ├── RateLimited         429
    └── Unavailable         503  the store cannot serve (down, schema out of date)
"""

from __future__ import annotations

from typing import Any, ClassVar


class AgentOSError(Exception):
    """Base of every AgentOS error; carries a stable code and details."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details if details is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(AgentOSError):
    status = 400
    default_code = "invalid_input"


class ValidationFailed(InvalidInput):
    """A document was invalid; ``details["errors"]`` lists every problem."""

    status = 422
    default_code = "validation_failed"


class Unauthorized(AgentOSError):
    status = 401
    default_code = "unauthorized"


class Forbidden(AgentOSError):
    status = 403
    default_code = "forbidden"


class NotFound(AgentOSError):
    status = 404
    default_code = "not_found"


class Conflict(AgentOSError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(AgentOSError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMedia(AgentOSError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimited(AgentOSError):
    status = 429
    default_code = "rate_limited"


class Unavailable(AgentOSError):
    status = 503
    default_code = "unavailable"
