"""The web console (issue 13, docs/console.md) driven in a real headless Chromium against `make dev`'s
stack: `agent-sessions dev` as a subprocess (started as tests/cli/test_dev_command.py starts it), one
per module, and one browser for them all.

The browser: Debian's `chromium` package driven by Playwright for Python with `executable_path`.
Playwright's own browser download is never used (it reaches a CDN; only the package registries are
reachable here and in CI) — Playwright drives Debian's build over the Chrome DevTools Protocol, which
is all it needs. (Selenium + `chromium-driver` would do as well, but has no WebSocket events and
no in-page wait primitives, which these tests lean on.) Without Playwright or chromium the tests
skip locally and fail under CI, whose `.ci/run` installs both.

The page reaches the gateway through a TCP relay of the test's own (`Relay`): the console's origin is
the relay's address, and a test can cut every connection through it at once, as a gateway restart
or a network drop would, to see the console reconnect.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli.test_dev_command import Dev, private_tmux_dir, start_dev

ROOT = Path(__file__).resolve().parents[2]
IMAGES = Path(os.environ.get("CONSOLE_SCREENSHOTS") or ROOT / "build" / "screenshots")
"""Where the tests put their screenshots: `build/screenshots` (ignored by git, as they differ in every
run: times), or `$CONSOLE_SCREENSHOTS`; `make screenshots` points it at docs/images, the README's."""
VIEWPORT = {"width": 1280, "height": 800}
"""A laptop screen: what the screenshots show and every page is tested at."""
TOKEN_KEY = "agent-sessions.token"
"""Where the console keeps the token (sessionStorage only, never a cookie or the URL)."""
DEMO_IMAGE = "ghcr.io/agent-session-operator/agent-sessions:0.1.0"
UI_TIMEOUT_MS = 30_000
"""How long a test waits for the page to show something (generous: CI is slow and shared)."""


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> None:
    """Skip locally; fail under CI, where `.ci/run` installs the browser and a skip would hide that
    it did not."""
    if under_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    """Debian's chromium (or `$CHROMIUM`, when that is an executable). The real binary rather than
    Debian's /usr/bin/chromium wrapper script when it is there: the wrapper only adds desktop flags."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    real = Path("/usr/lib/chromium/chromium")
    if real.is_file() and os.access(real, os.X_OK):
        return str(real)
    return shutil.which("chromium") or shutil.which("chromium-browser")


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for these tests (closed, and Playwright's event loop with it, before
    the rest of the suite runs); each test gets a fresh context (`page`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the console's browser tests need Playwright for Python: pip install -e '.[test]'")
    executable = chromium_path()
    if executable is None:
        skip_or_fail("the console's browser tests need Chromium: apt-get install chromium (Debian), or set CHROMIUM "
                     "to a Chromium executable")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Page:
    """A browser tab on the console, with what the page did that a test may assert on: the
    WebSockets it opened, the console errors it logged, the requests it made."""

    page: Any
    base: str
    websockets: list[Any] = field(default_factory=list)
    sent: list[tuple[int, Any]] = field(default_factory=list)
    """(index in `websockets`, payload) of every frame the page sent on a WebSocket."""
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    """(status, URL) of every answer of 400 or more the page got."""

    def goto(self, route: str = "#/") -> Any:
        return self.page.goto(self.base + "/" + route)

    def sign_in(self, token: str, user: str = "developer") -> None:
        """Through the form, as a user would; signed in once `#whoami` shows the user."""
        self.page.fill("#token", token)
        self.page.click("#signin-submit")
        expect(self.page.locator("#whoami")).to_have_text(user, timeout=UI_TIMEOUT_MS)

    def open(self, route: str, token: str, user: str = "developer") -> None:
        """`route`, signed in: the token put where the console keeps it, as a reload finds it."""
        self.goto(route)
        self.page.wait_for_selector("#signin, #whoami", timeout=UI_TIMEOUT_MS)
        if self.page.locator("#whoami").count() == 0 or self.page.locator("#whoami").inner_text() != user:
            self.sign_in(token, user)
        if self.page.evaluate("location.hash") != route:
            self.goto(route)

    def pane(self, ns: str, name: str) -> Any:
        return self.page.locator(f'section.chat-pane[data-session="{ns}/{name}"]')

    def open_session(self, name: str, token: str, ns: str = "default") -> Any:
        """The session's page, signed in with `token`: its chat pane, once connected."""
        self.open(f"#/sessions/{ns}/{name}", token)
        pane = self.pane(ns, name)
        expect(pane.locator(".chat-state")).to_have_text("connected")
        return pane

    def screenshot(self, name: str) -> Path:
        IMAGES.mkdir(parents=True, exist_ok=True)
        path = IMAGES / name
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path))
        return path


def expect(locator: Any) -> Any:
    """Playwright's `expect`, waiting as long as the pages may take (`UI_TIMEOUT_MS`)."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=UI_TIMEOUT_MS)
    return playwright_expect(locator)


# --- the dev stack ---------------------------------------------------------------------------------


class Relay:
    """A TCP relay from a local port to the gateway. `cut()` closes every connection through it, as
    a gateway restart would; while `refusing`, new connections are closed at once."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.refusing = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="console-relay", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                for sock in (source, sink):
                    if sock in self._open:
                        self._open.discard(sock)
                        sock.close()

    def cut(self) -> int:
        """Close every connection through the relay; how many there were."""
        with self._lock:
            cut = list(self._open)
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(cut) // 2

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


@dataclass
class Console:
    """`agent-sessions dev` running, and how to reach it: the gateway (directly and through the relay
    the browser uses), the embedded API (as the admin, which is what a token-less request is there),
    and the two users' tokens."""

    dev: Dev
    gateway: str
    relay: Relay
    api: str
    token: str
    viewer_token: str | None
    retry_after: str | None = None  # the last 429's `Retry-After`

    @property
    def url(self) -> str:
        """The console as the browser reaches it (through the relay)."""
        return f"http://127.0.0.1:{self.relay.port}"

    # the embedded API, as kubectl (the admin) --------------------------------------------------

    def kube(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method,
                                         headers={"Content-Type": content_type, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def session(self, name: str, ns: str = "default") -> dict:
        return self.kube("GET", f"/apis/agentsession.dev/v1alpha1/namespaces/{ns}/agentsessions/{name}")

    def create_session(self, name: str, *, chunk_delay: float | None = None, title: str | None = None,
                       labels: dict[str, str] | None = None, ns: str = "default") -> dict:
        """A session of the demo agent (as the `minimal` sample), `chunk_delay` seconds between its
        reply's chunks (DEMO_AGENT_CHUNK_DELAY) so that a page can see it grow."""
        agent: dict[str, Any] = {"image": DEMO_IMAGE, "command": ["agent-sessions", "demo-agent"]}
        if chunk_delay is not None:
            agent["env"] = [{"name": "DEMO_AGENT_CHUNK_DELAY", "value": str(chunk_delay)}]
        spec: dict[str, Any] = {"agent": agent}
        if title:
            spec["title"] = title
        body = {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession",
                "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}
        return self.kube("POST", f"/apis/agentsession.dev/v1alpha1/namespaces/{ns}/agentsessions", body)

    def wait_phase(self, name: str, phase: str, ns: str = "default", timeout: float = 60) -> dict:
        """Until the session is in `phase` (and, for Running, Ready: its runtime answers)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.session(name, ns)
            status = found.get("status") or {}
            ready = {x["type"]: x["status"] for x in status.get("conditions") or []}.get("Ready") == "True"
            if status.get("phase") == phase and (ready or phase != "Running"):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{ns}/{name} never reached {phase}; status: {found.get('status')}")
            time.sleep(0.1)

    # the gateway, as a client other than the page --------------------------------------------

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        """The gateway's status and JSON answer (directly, not through the relay)."""
        headers = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.gateway + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            self.retry_after = error.headers.get("Retry-After")
            text = error.read()
            return error.code, json.loads(text) if text else None

    def send(self, name: str, text: str, ns: str = "default") -> dict:
        """One message, as a well-behaved client sends it: a 429 (the gateway's per-caller rate
        limit, which the page's own requests share) is waited out, as its `Retry-After` says."""
        for _ in range(5):
            status, answer = self.call("POST", f"/v1/namespaces/{ns}/sessions/{name}/messages", body={"text": text})
            if status != 429:
                break
            time.sleep(float(self.retry_after or 1))
        assert status == 200, answer
        return answer


def gateway_url(banner: str) -> str:
    """The gateway's URL as `agent-sessions dev` prints it (the `Console:` line once it has one)."""
    found = re.search(r"Console: (http://\S+?)/?$", banner, re.M) or re.search(r"The gateway, at (http://\S+),", banner)
    assert found, banner
    return found.group(1)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One `make dev` stack per module (as tests/cli/test_dev_command.py runs it), its samples
    Running, and a relay in front of its gateway for the browser."""
    state = tmp_path_factory.mktemp("console") / ".dev"
    with private_tmux_dir() as tmux_dir:
        dev = start_dev(state, tmux_dir, cwd=state.parent)
        relay = None
        try:
            dev.wait_running("demo", "minimal")
            gateway = gateway_url(dev.banner)
            api = re.search(r"Kubernetes API at (http://\S+?),", dev.banner).group(1)
            host, _, port = gateway.removeprefix("http://").partition(":")
            relay = Relay((host, int(port)))
            viewer = state / "viewer-token"
            yield Console(dev=dev, gateway=gateway, relay=relay, api=api,
                          token=(state / "token").read_text().strip(),
                          viewer_token=viewer.read_text().strip() if viewer.is_file() else None)
        finally:
            if relay is not None:
                relay.close()
            out = dev.stop()
            assert dev.process.returncode == 0, out


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, console: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) at 1280×800 on the console. The page's
    console errors are collected; a test about a failure asserts on them itself. When a test
    fails, what the page showed and logged is printed with its report."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    opened = Page(page=tab, base=console.url)
    def on_websocket(ws: Any) -> None:
        index = len(opened.websockets)
        opened.websockets.append(ws)
        ws.on("framesent", lambda payload: opened.sent.append((index, payload)))

    tab.on("websocket", on_websocket)
    tab.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
    tab.on("request", lambda request: opened.requests.append(request.url))
    tab.on("response", lambda response: opened.refused.append((response.status, response.url))
           if response.status >= 400 else None)
    try:
        yield opened
    finally:
        if request.node.stash.get(CALL_FAILED, False):
            with contextlib.suppress(Exception):
                print(f"--- the page at {tab.url}:\n{tab.inner_text('body')}\n--- its errors: {opened.errors}\n"
                      f"--- answers >= 400: {opened.refused}\n--- the frames it sent: {opened.sent[-20:]}")
        context.close()


def viewer_token(console: Console) -> str:
    if console.viewer_token is None:
        pytest.fail("agent-sessions dev wrote no .dev/viewer-token (contract section 2)", pytrace=False)
    return console.viewer_token
