"""The console's files (agent_sessions.gateway.console): served at `/` and `/console/…` with a
strict Content-Security-Policy, nothing outside the shipped set."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent_sessions.gateway.console import CONTENT_SECURITY_POLICY, add_console_routes

TIER = "unit"


@pytest.fixture
async def console() -> TestClient:
    app = web.Application()
    add_console_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_the_console_page_is_served_at_the_root_with_a_strict_policy(console: TestClient) -> None:
    response = await console.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = await response.text()
    assert '<script type="module" src="/console/app.js"></script>' in body


async def test_every_script_and_stylesheet_the_page_names_is_served(console: TestClient) -> None:
    for path, kind in (("/console/app.js", "text/javascript"), ("/console/console.css", "text/css")):
        response = await console.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Type"].startswith(kind)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/console/nothing.js", "/console/..%2F__init__.py", "/console/__init__.py"])
async def test_nothing_outside_the_shipped_files_is_served(console: TestClient, path: str) -> None:
    assert (await console.get(path)).status == 404


def test_every_file_the_console_loads_is_shipped() -> None:
    """Each `import … from "./x.js"` and each `/console/…` the page names is a file of `static/`
    (a flat directory: the package data's `gateway/console/static/*` ships exactly these)."""
    import re
    import tomllib
    from importlib import resources
    from pathlib import Path

    static = resources.files("agent_sessions.gateway.console").joinpath("static")
    files = {entry.name for entry in static.iterdir()}
    assert all(static.joinpath(name).is_file() for name in files), "static/ must stay flat"
    named: set[str] = set()
    for name in files:
        text = static.joinpath(name).read_text(encoding="utf-8") if name.endswith((".js", ".html")) else ""
        named |= set(re.findall(r'from "\./([^"]+)"', text)) | set(re.findall(r'"/console/([^"]+)"', text))
    assert named and named <= files, sorted(named - files)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "gateway/console/static/*" in pyproject["tool"]["setuptools"]["package-data"]["agent_sessions"]
