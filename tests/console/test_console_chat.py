"""Talking to sessions in the console, in a real Chromium against `make dev`'s stack (issue 13: send
a message and see the streamed reply appear chunk by chunk, see a tool call, stop and start the
session, reload and see the history, several sessions side by side over one WebSocket, a reconnect
that resumes without loss or duplicates, send with the keyboard; the session page's screenshot).

The sessions here run the demo agent with a pause between its reply's chunks
(DEMO_AGENT_CHUNK_DELAY) so that the page visibly receives the reply in pieces."""

from __future__ import annotations

import json
import re
import threading

import pytest
from support.waits import wait_until

from agent_sessions.api import constants as c
from console.conftest import Console, Page, expect

TIER = "embedded"  # `agent-sessions dev` and a browser

CHUNK_DELAY = 0.4
"""Seconds between the demo agent's chunks: far above a render, so each chunk is its own paint."""


@pytest.fixture(scope="module")
def sessions(console: Console) -> dict[str, str]:
    """The module's sessions, created at once and waited for together."""
    names = {"talk": "talker", "lifecycle": "stop-start", "left": "pane-left", "right": "pane-right",
             "keys": "keyboard", "cut": "reconnecting", "history": "long-history", "restart": "restarted",
             "cancel": "cancelled", "notice": "not-sent"}
    for key, name in names.items():
        console.create_session(name, chunk_delay=0 if key in ("history", "left", "right", "restart") else CHUNK_DELAY)
    for name in names.values():
        console.wait_phase(name, "Running")
    return names


def transcript(page: Page, name: str, ns: str = "default") -> list[tuple[str, str]]:
    """(role, text) of every message the pane shows, in order, whitespace folded."""
    return [(role, " ".join(text.split())) for role, text in page.page.evaluate(
        """sel => [...document.querySelectorAll(sel + ' ol.transcript > li.message')]
                  .map(li => [li.dataset.role, (li.querySelector('.message-body') ?? li).textContent])""",
        f'section.chat-pane[data-session="{ns}/{name}"]')]


def seqs(page: Page, name: str, ns: str = "default") -> list[str]:
    return page.page.evaluate(
        "sel => [...document.querySelectorAll(sel + ' li.message[data-seq]')].map(li => li.dataset.seq)",
        f'section.chat-pane[data-session="{ns}/{name}"]')


def send(page: Page, name: str, text: str) -> None:
    pane = page.pane("default", name)
    pane.locator("textarea.message-input").fill(text)
    pane.locator("button.send").click()


def agent_reply(page: Page, name: str, text: str):
    """The pane's agent message whose text is the demo agent's echo of `text`."""
    return page.pane("default", name).locator('li.message[data-role="agent"]', has_text=f"You said: {text}")


def wait_done(page: Page, name: str, text: str) -> None:
    reply = agent_reply(page, name, text)
    expect(reply).to_have_count(1)
    expect(reply).to_have_attribute("data-streaming", "false")


# --- one turn, streamed -------------------------------------------------------------------------


def test_a_sent_message_streams_its_reply_chunk_by_chunk_with_the_tool_call_and_usage(
        page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["talk"]
    pane = page.open_session(name, console.token)
    expect(pane.locator("textarea.message-input")).to_be_editable()

    # Every state the agent's message goes through, as the page paints it.
    page.page.evaluate("""sel => {
        window.replyStates = [];
        const transcript = document.querySelector(sel + ' ol.transcript');
        new MutationObserver(() => {
            const replies = transcript.querySelectorAll('li.message[data-role="agent"]');
            const last = replies[replies.length - 1];
            if (!last) return;
            const state = [(last.querySelector('.message-body') ?? last).textContent.replace(/\\s+/g, ' ').trim(),
                           last.dataset.streaming];
            const previous = window.replyStates[window.replyStates.length - 1];
            if (!previous || previous[0] !== state[0] || previous[1] !== state[1]) window.replyStates.push(state);
        }).observe(transcript, {subtree: true, childList: true, characterData: true, attributes: true});
    }""", f'section.chat-pane[data-session="default/{name}"]')

    text = "please count these eight words for me now"
    send(page, name, text)
    expect(pane.locator('li.message[data-role="user"]', has_text=text)).to_have_count(1)
    wait_done(page, name, text)

    reply = f"You said: {text}"
    states = page.page.evaluate("window.replyStates")
    texts = [t for t, _ in states if t]
    growth = [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]
    assert growth[-1] == reply, states
    assert len(growth) >= 3, f"the reply appeared in {len(growth)} step(s), not chunk by chunk: {states}"
    for shorter, longer in zip(growth, growth[1:]):
        assert longer.startswith(shorter) and len(longer) > len(shorter), states
    assert ["true"] == sorted({s for t, s in states if t != reply}), f"streamed without data-streaming: {states}"
    assert states[-1] == [reply, "false"], states

    # The demo agent's tool call, completed, and the turn's usage.
    tool = pane.locator('li.message[data-role="tool"]')
    expect(tool).to_have_count(1)
    expect(tool).to_have_attribute("data-status", "completed")
    expect(tool).to_have_attribute("data-tool-call-id", "count-words-1")
    expect(tool.locator(".tool-title")).to_have_text("Count words")
    expect(pane.locator(".usage")).to_contain_text(re.compile(r"\b(8|10|18)\b"))  # 8 words in, 10 out
    expect(pane.locator("button.cancel")).to_be_hidden()

    shot = page.screenshot("console-session.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_reload_shows_the_history_once(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["history"]
    for text in ("first question", "second question"):
        console.send(name, text)
    page.open(f"#/sessions/default/{name}", console.token)
    for text in ("first question", "second question"):
        expect(agent_reply(page, name, text)).to_have_count(1)
    send(page, name, "third, from the page")
    wait_done(page, name, "third, from the page")
    before = transcript(page, name)
    assert [text for role, text in before if role == "user"] == \
        ["first question", "second question", "third, from the page"]

    page.page.reload()
    expect(page.page.locator("#whoami")).to_have_text("developer")  # sessionStorage outlives a reload
    expect(agent_reply(page, name, "third, from the page")).to_have_count(1)
    assert transcript(page, name) == before
    numbered = seqs(page, name)
    assert numbered and len(numbered) == len(set(numbered)), numbered


def test_earlier_history_is_loaded_on_demand_until_the_first_message(
        page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["history"]
    for turn in range(40):  # some hundreds of frames: more than a page shows at first
        console.send(name, f"filler {turn}")
    page.open(f"#/sessions/default/{name}", console.token)
    pane = page.pane("default", name)
    expect(agent_reply(page, name, "filler 39")).to_have_count(1)
    earlier = pane.locator("button.load-earlier")
    expect(earlier).to_be_visible()
    expect(pane.locator('li.message[data-role="user"]', has_text="first question")).to_have_count(0)
    for _ in range(100):
        if not earlier.is_visible():
            break
        earlier.click()
        page.page.wait_for_timeout(100)
    expect(earlier).to_be_hidden()
    users = [text for role, text in transcript(page, name) if role == "user"]
    assert users == ["first question", "second question", "third, from the page",
                     *(f"filler {turn}" for turn in range(40))], users
    numbered = seqs(page, name)
    assert len(numbered) == len(set(numbered))


def test_a_running_turn_is_cancelled_from_the_pane(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["cancel"]
    pane = page.open_session(name, console.token)
    text = " ".join(f"word{i}" for i in range(30))  # ten chunks, four seconds
    send(page, name, text)
    streaming = pane.locator('li.message[data-role="agent"][data-streaming="true"]')
    expect(streaming).to_have_count(1)
    pane.locator("button.cancel").click()
    reply = pane.locator('li.message[data-role="agent"]')
    expect(reply).to_have_attribute("data-streaming", "false")
    shown = " ".join(reply.locator(".message-body").text_content().split())
    assert f"You said: {text}".startswith(shown) and len(shown) < len(f"You said: {text}"), shown
    expect(pane.locator("button.cancel")).to_be_hidden()
    # The session takes the next message.
    send(page, name, "and now in full")
    wait_done(page, name, "and now in full")


# --- stop, start and restart -----------------------------------------------------------------------------


def test_stop_and_start_from_the_session_page(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["lifecycle"]
    page.open(f"#/sessions/default/{name}", console.token)
    phase, stop, start = (page.page.locator(s) for s in ("#session-phase", "button#stop", "button#start"))
    expect(phase).to_have_text("Running")
    expect(start).to_be_disabled()

    stop.click()
    expect(phase).to_have_text("Stopped", timeout=60_000)
    expect(stop).to_be_disabled()
    expect(start).to_be_enabled()
    assert console.session(name)["spec"]["state"] == "Stopped"

    start.click()
    expect(phase).to_have_text("Running", timeout=60_000)
    expect(page.page.locator("#session-ready")).to_have_text("True", timeout=60_000)
    expect(start).to_be_disabled()
    expect(stop).to_be_enabled()
    assert console.session(name)["spec"]["state"] == "Running"

    # It answers again, in the same pane.
    send(page, name, "back again")
    wait_done(page, name, "back again")


def test_restart_from_the_session_page_is_taken_by_the_operator(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["restart"]
    page.open(f"#/sessions/default/{name}", console.token)
    expect(page.page.locator("#session-phase")).to_have_text("Running")
    page.page.locator("button#restart").click()
    requested = wait_until(lambda: (console.session(name)["metadata"].get("annotations") or {}).get(c.ANNOTATION_RESTART),
                           what="the restart annotation")
    wait_until(lambda: (console.session(name).get("status") or {}).get("restartRequest") == requested,
               timeout=60, interval=0.1, what="the operator taking the restart")
    # The page shows each status in turn; "Running" may still be the one from before the restart
    # (a message sent then went to the runtime being stopped, and its reply left with it). The
    # restart count rises as the new start begins: a "Running" shown after it is the new runtime.
    restarts = page.page.locator("dl.state-list dt:text-is('Restarts') + dd")
    expect(restarts).to_have_text("1", timeout=60_000)
    expect(page.page.locator("#session-phase")).to_have_text("Running", timeout=60_000)
    expect(page.page.locator("#session-ready")).to_have_text("True", timeout=60_000)
    send(page, name, "after the restart")
    wait_done(page, name, "after the restart")


def test_a_message_not_sent_stays_said_after_the_pane_resubscribes(
        page: Page, console: Console, sessions: dict[str, str]):
    # A resubscription (here after a cut connection; also after a restart) clears the pane's notice
    # about the subscription, never the one saying the user's message was not sent.
    name = sessions["notice"]
    page.open(f"#/sessions/default/{name}", console.token)
    pane = page.pane("default", name)
    expect(pane.locator(".chat-state")).to_have_text("connected")
    elsewhere = threading.Thread(target=console.send, args=(name, "a turn from elsewhere"), daemon=True)
    elsewhere.start()
    expect(pane.locator('li.message[data-role="agent"][data-streaming="true"]')).to_have_count(1)
    send(page, name, "while it is busy")
    notice = pane.locator(".chat-notice")
    expect(notice).to_contain_text("Not sent:")
    said = notice.text_content()

    assert console.relay.cut() > 0
    expect(pane.locator(".chat-state")).to_have_text("connected")
    wait_done(page, name, "a turn from elsewhere")  # streamed through the resubscription
    elsewhere.join(timeout=60)
    expect(notice).to_have_text(said)
    expect(pane.locator("textarea.message-input")).to_have_value("while it is busy")  # not lost either

    pane.locator("button.send").click()  # sending again replaces it
    wait_done(page, name, "while it is busy")
    expect(notice).to_have_text("")


# --- side by side -------------------------------------------------------------------------------


def test_sessions_side_by_side_share_one_websocket(page: Page, console: Console, sessions: dict[str, str]):
    left, right = sessions["left"], sessions["right"]
    page.open("#/", console.token)
    expect(page.page.locator("#stream-state")).to_have_text("live")
    for name in (left, right):
        page.page.locator(f'tr[data-session="default/{name}"] input.open-side-by-side').check()
    page.page.click("button#open-selected")
    expect(page.page.locator("section.chat-pane")).to_have_count(2)
    assert page.page.evaluate("location.hash") == f"#/chat?s=default/{left}&s=default/{right}"

    for name in (left, right):
        expect(page.pane("default", name).locator(".chat-state")).to_have_text("connected")
        send(page, name, f"hello {name}")
    for name in (left, right):
        wait_done(page, name, f"hello {name}")
        assert [role for role, _ in transcript(page, name)].count("agent") == 1
    # Neither pane shows the other's conversation.
    assert not [t for _, t in transcript(page, left) if right in t]

    sockets = [ws for ws in page.websockets if ws.url.endswith("/v1/ws")]
    assert len(sockets) == 1, [ws.url for ws in page.websockets]
    assert not sockets[0].is_closed()
    assert console.token not in sockets[0].url  # the token goes as a subprotocol, never in the URL


# --- the keyboard -------------------------------------------------------------------------------


def test_a_message_is_sent_with_the_keyboard_only(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["keys"]
    pane = page.open_session(name, console.token)
    selector = f'section.chat-pane[data-session="default/{name}"] textarea.message-input'
    expect(pane.get_by_label("Message", exact=True)).to_have_count(1)
    for _ in range(200):
        if page.page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            break
        page.page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the message input")

    page.page.keyboard.type("first line")
    page.page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.page.keyboard.type("second line")
    assert pane.locator("textarea.message-input").input_value() == "first line\nsecond line"
    expect(pane.locator('li.message[data-role="user"]')).to_have_count(0)
    page.page.keyboard.press("Enter")
    user = pane.locator('li.message[data-role="user"]')
    expect(user).to_have_count(1)
    expect(user).to_contain_text("first line")
    expect(user).to_contain_text("second line")
    reply = pane.locator('li.message[data-role="agent"]')
    expect(reply).to_have_attribute("data-streaming", "false")
    expect(reply).to_contain_text("second line")
    expect(pane.locator("textarea.message-input")).to_have_value("")


# --- a reconnect ----------------------------------------------------------------------------------


def test_a_cut_connection_resumes_without_loss_or_duplicates(page: Page, console: Console, sessions: dict[str, str]):
    name = sessions["cut"]
    page.open(f"#/sessions/default/{name}", console.token)
    pane = page.pane("default", name)
    state = pane.locator(".chat-state")
    expect(state).to_have_text("connected")
    send(page, name, "before the cut")
    wait_done(page, name, "before the cut")

    had = max(int(seq) for seq in seqs(page, name))

    # The connection drops (as when the gateway restarts) and stays down while another client talks.
    console.relay.refusing = True
    try:
        assert console.relay.cut() > 0
        expect(state).to_have_text("reconnecting")
        console.send(name, "while the page was away")
    finally:
        console.relay.refusing = False
    expect(state).to_have_text("connected")
    expect(agent_reply(page, name, "while the page was away")).to_have_attribute("data-streaming", "false")
    # It resubscribed from where it was, not from the start (nor from now).
    later = [json.loads(payload) for index, payload in page.sent if index > 0]  # on the sockets after the first
    resubscribed = [frame for frame in later if frame.get("type") == "subscribe" and frame.get("name") == name]
    assert resubscribed and all((frame.get("after_seq") or 0) >= had for frame in resubscribed), (had, resubscribed)

    # And once more, mid-reply: the rest of the streamed turn arrives after the reconnect.
    send(page, name, "cut in the middle of this reply please")
    expect(pane.locator('li.message[data-role="agent"][data-streaming="true"]')).to_have_count(1)
    assert console.relay.cut() > 0
    wait_done(page, name, "cut in the middle of this reply please")

    resumed = transcript(page, name)
    users = [text for role, text in resumed if role == "user"]
    assert users == ["before the cut", "while the page was away", "cut in the middle of this reply please"], resumed
    agents = [text for role, text in resumed if role == "agent"]
    assert agents == [f"You said: {text}" for text in users], resumed
    numbered = seqs(page, name)
    assert len(numbered) == len(set(numbered)), numbered
    assert len([ws for ws in page.websockets if ws.url.endswith("/v1/ws")]) >= 2  # it did reconnect

    # What a fresh load of the history shows is exactly what the resumed page shows.
    page.page.reload()
    expect(agent_reply(page, name, "cut in the middle of this reply please")).to_have_count(1)
    assert transcript(page, name) == resumed
