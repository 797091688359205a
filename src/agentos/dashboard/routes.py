"""The dashboard: static pages served by ``agentos serve`` itself, no build step, no CDN."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)
_STATIC = resources.files("agentos.dashboard").joinpath("static")
_TYPES = {".js": "text/javascript", ".css": "text/css"}


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    """The dashboard; without a credential, the login form (401)."""
    return HTMLResponse(_STATIC.joinpath("index.html").read_text("utf-8"))


def login_page() -> HTMLResponse:
    return HTMLResponse(_STATIC.joinpath("login.html").read_text("utf-8"), status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


@router.get("/static/{name}")
async def static(name: str) -> Response:
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or suffix not in _TYPES or not _STATIC.joinpath(name).is_file():
        return Response(status_code=404)
    return Response(_STATIC.joinpath(name).read_text("utf-8"), media_type=_TYPES[suffix])
