"""What the console must not do, asserted in a real Chromium against `make dev`'s stack (issue 13):
show a user buttons for what RBAC denies them (and the gateway refuses a forged request anyway),
run anything an agent says (`<img onerror>`, `<script>`, `javascript:` links), show control
characters, or run inline script at all (its Content-Security-Policy)."""

from __future__ import annotations

import re

import pytest

from console.conftest import Console, Page, expect, viewer_token

TIER = "embedded"  # `agent-sessions dev` and a browser

PAYLOAD = ('<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> '
           '<svg onload="window.pwned=3"></svg> [click](javascript:window.pwned=4) **bold**')
"""What an agent might say: the demo agent echoes it back, so it comes back as the agent's reply,
and (being the session's first prompt) as the session's title too."""
ACTIVE = "img, script, svg, iframe, object, embed, [onerror], [onload], [onclick], a[href^='javascript:' i]"
"""Elements and attributes that would run or load something, none of which agent text may become."""


@pytest.fixture(scope="module")
def sessions(console: Console) -> dict[str, str]:
    names = {"xss": "untrusted", "control": "control-chars"}
    for name in names.values():
        console.create_session(name, chunk_delay=0)
    for name in names.values():
        console.wait_phase(name, "Running")
    return names


def flag(page: Page) -> object:
    return page.page.evaluate("window.pwned ?? null")


# --- what a user may do --------------------------------------------------------------------------


def test_a_viewer_sees_no_button_for_what_they_may_not_do_and_a_forged_request_gets_403(page: Page, console: Console):
    token = viewer_token(console)
    page.open("#/sessions/default/demo", token, user="viewer")
    expect(page.page.locator("h1#session-name")).to_have_text("demo")
    expect(page.page.locator("#session-phase")).to_have_text("Running")
    expect(page.pane("default", "demo").locator("ol.transcript")).to_have_count(1)  # they may read it
    for absent in ("button#stop", "button#start", "button#restart", "textarea.message-input", "button.send",
                   "button.cancel"):
        expect(page.page.locator(absent)).to_have_count(0)

    # What the page's own code would send, forged from the page with the viewer's token: refused.
    for action, body in (("stop", None), ("start", None), ("restart", None), ("messages", '{"text": "hi"}')):
        answer = page.page.evaluate("""async ([action, body]) => {
            const token = sessionStorage.getItem('agent-sessions.token');
            const response = await fetch('/v1/namespaces/default/sessions/demo/' + action, {
                method: 'POST', body,
                headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}});
            return [response.status, await response.json()];
        }""", [action, body])
        assert answer[0] == 403 and answer[1]["code"] == "forbidden", (action, answer)
    found = console.session("demo")
    assert found["spec"].get("state", "Running") == "Running" and found["status"]["phase"] == "Running"


def test_the_developer_gets_the_buttons_the_viewer_does_not(page: Page, console: Console):
    page.open("#/sessions/default/demo", console.token)
    expect(page.page.locator("button#stop")).to_be_enabled()
    expect(page.page.locator("button#restart")).to_have_count(1)
    expect(page.pane("default", "demo").locator("textarea.message-input")).to_be_editable()
    status, access = console.call("GET", "/v1/namespaces/default/sessions/demo/access", viewer_token(console))
    assert status == 200 and access["allowed"]["get"] and not access["allowed"]["patch"], access
    assert not access["allowed"]["send"], access


# --- untrusted agent output ------------------------------------------------------------------------


def test_an_agent_reply_with_html_and_script_runs_nothing_and_is_shown_as_text(
        page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["xss"]
    pane = page.open_session(name, console.token)
    pane.locator("textarea.message-input").fill(PAYLOAD)
    pane.locator("button.send").click()
    reply = pane.locator('li.message[data-role="agent"]')
    expect(reply).to_have_attribute("data-streaming", "false")
    page.page.wait_for_timeout(500)  # time for an image error or a load handler, had one been created

    assert flag(page) is None
    assert page.page.locator("ol.transcript").locator(ACTIVE).count() == 0
    body = reply.locator(".message-body").text_content()
    for literal in ('<img src=x onerror="window.pwned=1">', "<script>window.pwned=2</script>",
                    '<svg onload="window.pwned=3"></svg>'):
        assert literal in body, body
    expect(reply.locator(".message-body strong")).to_have_text("bold")  # Markdown still works
    for link in reply.locator(".message-body a").all():
        assert re.match(r"https?://", link.get_attribute("href") or ""), link.get_attribute("href")
    assert not [url for url in page.requests if url.rstrip("/").endswith("/x")], "the <img> was loaded"

    # The same text as the session's title (the demo agent takes it from the first prompt), in the
    # list and on the session page.
    expect(page.page.locator("section#session-info")).to_contain_text("<img")
    page.goto("#/")
    expect(page.page.locator(f'tr[data-session="default/{name}"] td[data-col="title"]')).to_contain_text("<img")
    page.page.wait_for_timeout(500)
    assert flag(page) is None
    assert page.page.locator("table#sessions").locator(ACTIVE).count() == 0
    assert not [e for e in page.errors if "pwned" in e]


def test_control_characters_in_agent_text_are_not_shown(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["control"]
    pane = page.open_session(name, console.token)
    text = "bell\x07 escape\x1b[31m red c1\x85\x9b bidi\u202egnp.exe\u202c isolate\u2066x\u2069 end"
    console.send(name, text)
    reply = pane.locator('li.message[data-role="agent"]')
    expect(reply).to_have_attribute("data-streaming", "false")
    expect(reply).to_contain_text("end")
    shown = page.page.locator("ol.transcript").text_content()
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown), repr(shown)
    assert "bell" in shown and "gnp.exe" in shown


# --- the Content-Security-Policy --------------------------------------------------------------------


def test_the_policy_blocks_inline_script_style_and_eval_in_the_page(page: Page, console: Console):
    response = page.goto()
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["default-src"] == ["'none'"], policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    page.sign_in(console.token)

    blocked = page.page.evaluate("""async () => {
        const seen = [];
        const blockedUris = [];
        document.addEventListener('securitypolicyviolation', e => {
            seen.push(e.effectiveDirective);
            blockedUris.push(e.blockedURI);
        });
        const script = document.createElement('script');
        script.textContent = 'window.pwned = "inline script"';
        document.body.appendChild(script);
        const handler = document.createElement('button');
        handler.setAttribute('onclick', 'window.pwned = "inline handler"');
        document.body.appendChild(handler);
        handler.click();
        const styled = document.createElement('div');
        styled.setAttribute('style', 'color: red');
        document.body.appendChild(styled);
        // eval from a task of the page's own (DevTools lets eval run during its own evaluation).
        const evaluated = await new Promise(resolve => setTimeout(() => {
            try { eval('1'); resolve('ran'); } catch (e) { resolve(e.name); }
        }, 0));
        setTimeout('window.pwned = "string timer"', 0);
        const external = document.createElement('script');
        external.src = 'http://127.0.0.2:9/x.js';  // another origin (on this machine)
        document.body.appendChild(external);
        await new Promise(resolve => setTimeout(resolve, 300));
        return {pwned: window.pwned ?? null, seen, blockedUris, evaluated,
                styled: getComputedStyle(styled).color};
    }""")
    assert blocked["pwned"] is None, blocked
    assert blocked["evaluated"] == "EvalError", blocked
    assert {"script-src-elem", "script-src-attr", "style-src-attr"} <= set(blocked["seen"]), blocked
    assert blocked["styled"] != "rgb(255, 0, 0)", blocked
    assert "http://127.0.0.2:9/x.js" in blocked["blockedUris"], blocked  # a script of another origin
