"""The console's sign-in, its live sessions list and its session page, in a real Chromium against
`make dev`'s stack (issue 13: sign in, the list updates when a session is created, open a session;
the screenshot of the list)."""

from __future__ import annotations

import re

from console.conftest import TOKEN_KEY, Console, Page, expect

TIER = "embedded"  # `agent-sessions dev` and a browser


def row(page: Page, name: str, ns: str = "default"):
    return page.page.locator(f'table#sessions tr[data-session="{ns}/{name}"]')


def cell(page: Page, name: str, column: str):
    return row(page, name).locator(f'td[data-col="{column}"]')


# --- sign-in ------------------------------------------------------------------------------------


def test_make_dev_prints_the_console_url_and_where_both_tokens_are(console: Console):
    assert f"Console: {console.gateway}/" in console.dev.banner
    assert str(console.dev.state / "token") in console.dev.banner
    assert str(console.dev.state / "viewer-token") in console.dev.banner


def test_signing_in_with_a_bearer_token_shows_the_user_and_keeps_the_token_in_session_storage_only(
        page: Page, console: Console):
    response = page.goto()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    form = page.page.locator("form#signin")
    expect(form).to_be_visible()
    expect(page.page.locator('label[for="token"]')).to_have_text("Bearer token")
    expect(page.page.locator("input#token")).to_have_attribute("type", "password")

    page.sign_in(console.token)
    expect(form).to_have_count(0)
    assert page.page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") == console.token
    assert page.page.evaluate("localStorage.length") == 0
    assert page.page.context.cookies() == []
    assert not [url for url in page.requests if console.token in url], "the token was put in a URL"
    assert not [ws.url for ws in page.websockets if console.token in ws.url]

    page.page.click("#signout")
    expect(page.page.locator("form#signin")).to_be_visible()
    expect(page.page.locator("#whoami")).to_have_count(0)
    assert page.page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None


def test_a_wrong_token_is_refused_with_an_alert_and_nothing_is_kept(page: Page):
    page.goto()
    page.page.fill("#token", "not-a-token-the-cluster-knows")
    page.page.click("#signin-submit")
    error = page.page.locator("#signin-error")
    expect(error).to_have_attribute("role", "alert")
    expect(error).not_to_be_empty()
    expect(page.page.locator("#whoami")).to_have_count(0)
    assert page.page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None


def test_sign_in_works_with_the_keyboard_only(page: Page, console: Console):
    page.goto()
    page.page.wait_for_selector("form#signin")
    focus_by_tab(page, "#token")
    page.page.keyboard.type(console.token)
    page.page.keyboard.press("Enter")
    expect(page.page.locator("#whoami")).to_have_text("developer")

    # On to a session with the keyboard too: Tab to its link, Enter.
    expect(page.page.locator("#stream-state")).to_have_text("live")
    focus_by_tab(page, 'table#sessions a[href="#/sessions/default/demo"]')
    page.page.keyboard.press("Enter")
    expect(page.page.locator("h1#session-name")).to_have_text("demo")


def focus_by_tab(page: Page, selector: str, presses: int = 120) -> None:
    """Press Tab until `selector` has the focus (a keyboard user's only way there)."""
    for _ in range(presses):
        if page.page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus in {presses} presses of Tab; "
                         f"last: {page.page.evaluate('document.activeElement?.outerHTML')}")


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_every_sample_session_with_its_columns(page: Page, console: Console):
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(page.page.locator("select#namespace")).to_have_value("default")
    expect(page.page.locator("select#namespace option", has_text="default")).to_have_count(1)
    for name in ("demo", "minimal", "parked", "cloud"):
        expect(row(page, name)).to_have_count(1)
    expect(cell(page, "demo", "name").locator('a[href="#/sessions/default/demo"]')).to_have_text("demo")
    expect(cell(page, "demo", "phase")).to_have_text("Running")
    expect(cell(page, "demo", "ready")).to_have_text("True")
    expect(cell(page, "demo", "provider")).to_have_text("pod")
    expect(cell(page, "parked", "phase")).to_have_text("Stopped")
    expect(cell(page, "cloud", "phase")).to_have_text("Pending")
    expect(cell(page, "cloud", "ready")).to_have_text("False")
    expect(cell(page, "cloud", "reason")).not_to_be_empty()
    summary = {item["name"]: item for item in console.call("GET", "/v1/namespaces/default/sessions")[1]["items"]}
    title = (summary["demo"].get("title") or "")
    if title:
        expect(cell(page, "demo", "title")).to_have_text(title)
    for column in ("health", "last-activity"):
        expect(cell(page, "demo", column)).to_have_count(1)

    shot = page.screenshot("console-list.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_list_shows_a_session_created_while_it_is_open_and_follows_its_phase(page: Page, console: Console):
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(row(page, "demo")).to_have_count(1)
    page.page.evaluate("window.sameDocument = true")

    console.create_session("created-live", title="Created while watched")
    expect(row(page, "created-live")).to_have_count(1)
    expect(cell(page, "created-live", "phase")).to_have_text("Running", timeout=60_000)
    expect(cell(page, "created-live", "ready")).to_have_text("True")
    expect(cell(page, "created-live", "title")).to_have_text("Created while watched")
    expect(cell(page, "created-live", "provider")).to_have_text("pod")
    assert page.page.evaluate("window.sameDocument") is True, "the page was reloaded, not updated"


def test_the_list_filters_by_phase_and_by_label(page: Page, console: Console):
    console.create_session("labelled", labels={"console-test": "filter"})
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(row(page, "labelled")).to_have_count(1)

    page.page.select_option("select#phase-filter", "Stopped")
    expect(row(page, "parked")).to_have_count(1)
    expect(row(page, "demo")).to_have_count(0)
    page.page.select_option("select#phase-filter", "")
    expect(row(page, "demo")).to_have_count(1)

    page.page.fill("input#label-filter", "console-test=filter")
    expect(row(page, "labelled")).to_have_count(1)
    expect(row(page, "demo")).to_have_count(0)
    page.page.fill("input#label-filter", "console-test!=filter")
    expect(row(page, "labelled")).to_have_count(0)
    expect(row(page, "demo")).to_have_count(1)


def test_a_typed_namespace_is_listed_and_followed_live(page: Page, console: Console):
    console.kube("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "elsewhere"}})
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    page.page.fill("input#namespace-other", "elsewhere")
    page.page.press("input#namespace-other", "Enter")
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(page.page.locator("table#sessions tr[data-session]")).to_have_count(0)  # default's are gone

    console.create_session("over-there", ns="elsewhere")
    there = page.page.locator('table#sessions tr[data-session="elsewhere/over-there"]')
    expect(there).to_have_count(1)
    expect(there.locator('td[data-col="phase"]')).to_have_text("Running", timeout=60_000)
    expect(there.locator('a[href="#/sessions/elsewhere/over-there"]')).to_have_count(1)


def test_the_list_resumes_after_its_stream_is_cut_and_misses_nothing_created_meanwhile(page: Page, console: Console):
    page.open("#/", console.token)
    state = page.page.locator("#stream-state")
    expect(state).to_have_text("live")
    page.page.evaluate("window.sameDocument = true")

    console.relay.refusing = True
    try:
        assert console.relay.cut() > 0
        expect(state).to_have_text("reconnecting")
        console.create_session("created-while-cut")
        console.wait_phase("created-while-cut", "Running")
    finally:
        console.relay.refusing = False
    expect(cell(page, "created-while-cut", "phase")).to_have_text("Running")
    expect(state).to_have_text("live")
    assert page.page.evaluate("window.sameDocument") is True


# --- a session's page ---------------------------------------------------------------------------


def test_opening_a_session_shows_its_state_conditions_info_and_where_its_configuration_came_from(
        page: Page, console: Console):
    page.open("#/", console.token)
    cell(page, "demo", "name").locator("a").click()
    assert page.page.evaluate("location.hash") == "#/sessions/default/demo"
    expect(page.page.locator("h1#session-name")).to_have_text("demo")
    expect(page.page.locator("#session-phase")).to_have_text("Running")
    expect(page.page.locator("#session-ready")).to_have_text("True")

    status, shown = console.call("GET", "/v1/namespaces/default/sessions/demo")
    assert status == 200, shown
    detail = shown["detail"]
    for condition in detail["conditions"]:
        expect(page.page.locator(f'section#conditions tr[data-condition="{condition["type"]}"]')).to_have_count(1)
    expect(page.page.locator('section#conditions tr[data-condition="Ready"]')).to_contain_text("True")
    expect(page.page.locator("#health")).to_have_count(1)
    expect(page.page.locator("pre#log-tail")).to_have_count(1)
    info = detail.get("sessionInfo") or {}
    if info.get("title"):
        expect(page.page.locator("section#session-info")).to_contain_text(info["title"])
    for key in (info.get("_meta") or {}):
        expect(page.page.locator("section#session-info dl")).to_contain_text(key)
    expect(page.page.locator("section#capabilities")).to_have_count(1)

    status, config = console.call("GET", "/v1/namespaces/default/sessions/demo/config")
    assert status == 200, config
    image = page.page.locator('section#config tr[data-path="agent.image"]')
    expect(image.locator('td[data-col="layer"]')).to_have_text('SessionTemplate "base"')
    expect(image.locator('td[data-col="value"]')).to_contain_text("agent-sessions:0.1.0")
    rows = page.page.locator("section#config tr[data-path]")
    expect(rows).to_have_count(len(config["fields"]) + len(config.get("removed") or []))
    for entry in config["fields"]:
        expect(page.page.locator(f'section#config tr[data-path="{entry["path"]}"] td[data-col="layer"]')
               ).to_have_text(entry["layer"])

    # The developer may patch: the lifecycle buttons are there, stop enabled while it runs.
    expect(page.page.locator("button#stop")).to_be_enabled()
    expect(page.page.locator("button#start")).to_be_disabled()
    expect(page.page.locator("button#restart")).to_have_count(1)
    assert re.fullmatch(r"#/sessions/default/demo", page.page.evaluate("location.hash"))


# --- accessibility --------------------------------------------------------------------------------

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter(el => el.type !== 'hidden' && !el.hidden && el.getClientRects().length > 0)
    .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                    || el.getAttribute('aria-labelledby') || el.textContent.trim() || el.title))
    .map(el => el.outerHTML)"""
"""Every visible control without an accessible name (a label, aria-label(ledby), its text or title)."""


def test_the_list_and_the_session_page_label_every_control_and_fit_a_laptop_screen(page: Page, console: Console):
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(row(page, "demo")).to_have_count(1)
    assert page.page.evaluate(UNLABELLED) == []
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
    page.goto("#/sessions/default/demo")
    expect(page.pane("default", "demo").locator(".chat-state")).to_have_text("connected")
    assert page.page.evaluate(UNLABELLED) == []
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 1280


LOW_CONTRAST = """() => {
  // WCAG 2.x contrast of every visible element's own text against the first opaque background
  // behind it (the console uses flat colours: no images or gradients under text).
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const colour = rgb(getComputedStyle(node).backgroundColor);
      if (colour.length === 3 || colour[3] === 1) return colour.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || el.getClientRects().length === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    const style = getComputedStyle(el);
    const fg = rgb(style.color), bg = background(el);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) found.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return found;
}"""
"""Every visible text below WCAG AA contrast (4.5:1, 3:1 for large text), with its ratio."""


def test_every_text_of_the_sign_in_list_and_session_page_has_aa_contrast(page: Page, console: Console):
    page.goto("#/")
    expect(page.page.locator("form#signin")).to_be_visible()
    assert page.page.evaluate(LOW_CONTRAST) == []
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    expect(row(page, "demo")).to_have_count(1)
    assert page.page.evaluate(LOW_CONTRAST) == []
    page.goto("#/sessions/default/demo")
    expect(page.pane("default", "demo").locator(".chat-state")).to_have_text("connected")
    expect(page.page.locator("section#conditions tr[data-condition]").first).to_be_visible()
    assert page.page.evaluate(LOW_CONTRAST) == []
