"""The dashboard over HTTP: one route per page, the sign-in page, static files.

Every page is the same small shell (rendered here, with the caller and what
their role may do); its script draws the page from the REST API the CLI uses,
so the dashboard reads and acts with the caller's own token and rules and
reaches the database no other way. Static files are our scripts and styles
plus the front-end libraries that ``make`` installs from npm into
``static/vendor/`` (git-ignored; nothing is fetched at run time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from agentos.api import access
from agentos.dashboard.pages import BY_PATH, PAGES, Page
from agentos.errors import AgentOSError, Forbidden
from agentos.roles import Role
from agentos.tokens import Principal

router = APIRouter(include_in_schema=False)
# Pages run only our own scripts and talk only to this server: an injected tag or
# attribute could neither run nor send anything elsewhere, nor frame the page (inline
# styles are allowed: Cytoscape.js sets them on the graphs it draws)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATIC = Path(__file__).parent / "static"
VENDOR_STAMP = STATIC / "vendor" / ".installed"  # written by scripts/dashboard-assets.sh
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".svg": "image/svg+xml", ".txt": "text/plain"}
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("agentos.dashboard", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@cache
def allowed(role: Role) -> list[str]:
    """Every route the role may call, as ``METHOD /path/{param}``: the pages show
    a button only when its route is in this list (the server checks again)."""
    return sorted(f"{method} {path}" for (method, path), rule in access.RULES.items()
                  if path.startswith("/api/") and (rule.role is None or role.allows(rule.role)))


def _section(path: str) -> str:
    return path.split("/")[1]


def render_page(page: Page, principal: Principal, params: dict[str, Any]) -> str:
    nav = [p for p in PAGES if p.nav and principal.role.allows(p.role)]
    session = {"actor": principal.actor, "role": str(principal.role),
               "kind": principal.kind, "allowed": allowed(principal.role)}
    return _templates.get_template("page.html").render(
        page=page, nav=nav, current=_section(page.path), session=session, params=params,
        assets_missing=not VENDOR_STAMP.exists())


def _page_route(page: Page) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def show(request: Request) -> HTMLResponse:
        principal: Principal = request.state.principal
        return HTMLResponse(render_page(page, principal, dict(request.path_params)),
                            headers={"Cache-Control": "no-store", **SECURITY_HEADERS})

    show.__doc__ = f"The dashboard's {page.title} page."
    return show


for _page in PAGES:
    router.add_api_route(_page.path, _page_route(_page), methods=["GET"],
                         response_class=HTMLResponse, name=f"dashboard.{_page.script}")


def is_page(request: Request) -> bool:
    """Whether the request was routed to a dashboard page (a person, not a script)."""
    return request.method == "GET" and getattr(request.scope.get("route"), "path", None) \
        in BY_PATH


def error_page(exc: AgentOSError) -> HTMLResponse:
    """What a person sees instead of a page: the sign-in form (no valid credential),
    or why their role cannot open it."""
    if isinstance(exc, Forbidden):
        html = _templates.get_template("forbidden.html").render(message=exc.message)
        return HTMLResponse(html, status_code=exc.status, headers=SECURITY_HEADERS)
    html = _templates.get_template("login.html").render()
    return HTMLResponse(html, status_code=401,
                        headers={"WWW-Authenticate": "Bearer", **SECURITY_HEADERS})


@router.get("/static/{path:path}")
async def static(request: Request, path: str) -> Response:
    """Our scripts and styles, and the installed front-end libraries; revalidated
    on every load (ETag), so a new release is never hidden by a cache."""
    file = (STATIC / path).resolve()
    if file.suffix not in _TYPES or not file.is_relative_to(STATIC.resolve()) or \
            any(part.startswith(".") for part in Path(path).parts) or not file.is_file():
        return Response(status_code=404)
    stat = file.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(file, media_type=_TYPES[file.suffix], headers=headers)
