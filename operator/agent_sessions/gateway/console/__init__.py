"""The web console (docs/console.md): static files served by the gateway at `/`, same origin as
its API.

Everything the console shows or does goes through the gateway's API with the user's own bearer
token; these routes serve files only and need no token (they hold nothing but code). Every answer
carries a strict Content-Security-Policy: scripts, styles and connections from this origin only,
no inline script or style, no framing, no plugins.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from aiohttp import web

CONTENT_SECURITY_POLICY: Final = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
ASSETS_PREFIX: Final = "/console/"


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file of `static/` by name, read once: the set is fixed, so a request can never name
    a path outside it (no traversal to guard against)."""
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


def _answer(body: bytes, content_type: str) -> web.Response:
    response = web.Response(body=body, headers=SECURITY_HEADERS)
    response.headers["Content-Type"] = content_type
    return response


def add_console_routes(app: web.Application) -> None:
    files = _assets()

    async def index(request: web.Request) -> web.Response:
        return _answer(*files["index.html"])

    async def asset(request: web.Request) -> web.Response:
        found = files.get(request.match_info["file"])
        if found is None:
            raise web.HTTPNotFound()
        return _answer(*found)

    app.router.add_get("/", index)
    app.router.add_get(ASSETS_PREFIX + "{file}", asset)
