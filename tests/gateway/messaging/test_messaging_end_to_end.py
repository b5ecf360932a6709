"""Issue acceptance, with real processes end to end: a client → the gateway → the session's
runtime bridge (a local process started by the pod runner from the pod the operator created) →
the demo agent, and back; and the operator folding what the agent reports into status."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp

from agent_sessions.api import constants as c
from agent_sessions.wire.runtime_client import RuntimeClient
from gateway.conftest import read_sse

from .conftest import DEMO, INFO_AGENT, NAMESPACE, agent_session, is_ready, url, wait_session


async def running(api, name: str, **spec) -> dict:
    api.create(c.SESSION_PLURAL, agent_session(name, **spec))
    return await wait_session(api, name, is_ready)


async def test_sync_message_round_trip(api, operator, gateway, http):
    obj = await running(api, "sync")
    async with http.post(url(gateway, "sync", "/messages"), json={"text": "hello there"}) as response:
        assert response.status == 200
        reply = await response.json()
    assert reply["text"] == "You said: hello there"
    assert reply["stopReason"] == "end_turn"
    assert reply["session"] == {"namespace": NAMESPACE, "name": "sync", "uid": obj["metadata"]["uid"]}
    assert reply["usage"] is not None


async def test_a_message_sent_twice_with_one_id_through_the_gateway_runs_one_turn(api, operator, gateway, http):
    await running(api, "retried")
    body = {"text": "charge my card once", "id": "msg-7f3a"}
    async with http.post(url(gateway, "retried", "/messages"), json=body) as response:
        assert response.status == 200
        first = await response.json()
    async with http.post(url(gateway, "retried", "/messages"), json=body) as response:  # a client retry
        assert response.status == 200
        again = await response.json()
    assert (again["seq"], again["text"]) == (first["seq"], first["text"])
    async with http.get(url(gateway, "retried")) as response:
        items = (await response.json())["items"]
    assert sum(1 for f in items if f["event"] == "user_message") == 1


async def test_sse_stream_is_ordered_and_every_event_names_the_session(api, operator, gateway, http):
    obj = await running(api, "streamy")
    async with http.post(url(gateway, "streamy", "/messages"), params={"stream": "true"}, json={"text": "count these words"}) as response:
        assert response.status == 200
        frames = await read_sse(response, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    seqs = [f["data"]["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(f["data"]["session"]["uid"] == obj["metadata"]["uid"] for f in frames)
    kinds = [f["event"] for f in frames]
    assert kinds.count("agent_message_chunk") >= 3 and "tool_call" in kinds and "session_info_update" in kinds
    assert kinds[-1] == "done" and frames[-1]["data"]["stopReason"] == "end_turn"


async def test_history_survives_a_restart_of_the_bridge(api, operator, runner, gateway, http):
    await running(api, "durable")
    async with http.post(url(gateway, "durable", "/messages"), json={"text": "remember me"}) as response:
        assert response.status == 200
    async with http.get(url(gateway, "durable")) as response:
        before = (await response.json())["items"]
    pod = (await wait_session(api, "durable", is_ready))["status"]["provider"]["id"]
    runner.process(NAMESPACE, pod).kill()  # the bridge dies; the kubelet (runner) restarts it
    await wait_session(api, "durable", lambda o: is_ready(o) and (o["status"].get("restartCount") or 0) >= 1)
    async with http.get(url(gateway, "durable")) as response:
        after = (await response.json())["items"]
    assert [f["seq"] for f in after[: len(before)]] == [f["seq"] for f in before]
    assert any("remember me" in json.dumps(f) for f in after if f["event"] == "user_message")


async def test_events_replay_after_seq_then_tail(api, operator, gateway, http):
    await running(api, "tailed")
    async with http.post(url(gateway, "tailed", "/messages"), json={"text": "first"}) as response:
        first = await response.json()
    after = first["seq"] - 2  # replay the last two frames of the first turn
    async with http.get(url(gateway, "tailed", "/events"), params={"after_seq": str(after)}) as events:
        replayed = await read_sse(events, lambda m: len(m) >= 2)
        assert [f["data"]["seq"] for f in replayed] == [after + 1, after + 2]
        async with http.post(url(gateway, "tailed", "/messages"), json={"text": "second"}) as response:
            assert response.status == 200
        tail = await read_sse(events, lambda m: bool(m) and m[-1]["event"] == "done")
    assert tail[0]["data"]["seq"] == after + 3
    assert any("second" in json.dumps(f["data"]) for f in tail if f["event"] == "user_message")


async def test_two_sessions_on_one_websocket_never_see_each_others_events(api, operator, gateway, http):
    one, two = await running(api, "left"), await running(api, "right")
    uids = {"left": one["metadata"]["uid"], "right": two["metadata"]["uid"]}
    async with http.ws_connect(f"{gateway}/v1/ws") as ws:
        for name in uids:
            await ws.send_json({"type": "subscribe", "namespace": NAMESPACE, "name": name})
        for name in uids:
            await ws.send_json({"type": "send", "namespace": NAMESPACE, "name": name, "id": name, "text": f"I am {name}"})
        seen: dict[str, list[dict]] = {"left": [], "right": []}
        done: set[str] = set()
        async with asyncio.timeout(30):
            while done != set(uids):
                frame = await ws.receive_json()
                if frame["type"] in ("subscribed", "pong"):
                    continue
                assert frame["type"] != "error", frame
                session = frame["session"]
                assert session["uid"] == uids[session["name"]]
                seen[session["name"]].append(frame)
                if frame["type"] == "done":
                    done.add(session["name"])
    for name, other in (("left", "right"), ("right", "left")):
        text = json.dumps(seen[name])
        assert f"I am {name}" in text and f"I am {other}" not in text


async def test_session_info_follows_updates_including_null_clears_and_meta_merges(api, operator, gateway, http):
    await running(api, "informed", command=INFO_AGENT)
    async with http.post(url(gateway, "informed", "/messages"), json={"text": "one"}) as response:
        assert response.status == 200
    obj = await wait_session(api, "informed", lambda o: (o["status"].get("sessionInfo") or {}).get("title") == "First title")
    assert obj["status"]["sessionInfo"]["meta"] == {"a": 1, "b": 2}
    assert obj["status"]["title"] == "First title"

    async with http.post(url(gateway, "informed", "/messages"), json={"text": "two"}) as response:
        assert response.status == 200
    obj = await wait_session(api, "informed", lambda o: "title" not in (o["status"].get("sessionInfo") or {"title": 1}))
    assert obj["status"]["sessionInfo"]["meta"] == {"b": 2, "c": 3}
    assert "title" not in obj["status"]


async def test_spec_title_overrides_the_agents_title(api, operator, gateway, http):
    await running(api, "titled", title="Chosen by the user")
    async with http.post(url(gateway, "titled", "/messages"), json={"text": "The agent would call it this"}) as response:
        assert response.status == 200
    obj = await wait_session(api, "titled", lambda o: (o["status"].get("sessionInfo") or {}).get("title"))
    assert obj["status"]["sessionInfo"]["title"] == "The agent would call it this"
    assert obj["status"]["title"] == "Chosen by the user"


class DyingRuntimeClient(RuntimeClient):
    """The operator 'dies' in the middle of delivering the prompt: before or after the send."""

    def __init__(self, user_agent: str, *, send_first: bool, reached: threading.Event) -> None:
        super().__init__(user_agent=user_agent)
        self.send_first, self.reached = send_first, reached

    async def deliver(self, endpoint, text, message_id):
        if self.send_first:
            await super().deliver(endpoint, text, message_id)
        self.reached.set()
        await asyncio.Event().wait()  # never records Delivered: the operator is stopped here


async def prompt_survives_an_operator_restart(api, runner, start_operator, http, gateway, *, send_first: bool) -> None:
    from agent_sessions.k8s.client import USER_AGENT

    reached = threading.Event()
    first = start_operator(runtime_client_factory=lambda: DyingRuntimeClient(USER_AGENT, send_first=send_first, reached=reached))
    api.create(c.SESSION_PLURAL, agent_session("prompted", prompt="Only once, please."))
    await asyncio.to_thread(reached.wait, 30)
    # Nothing is written before the send: the runtime's answer goes into the status patch that
    # records Running, so the operator "died" before recording anything about the prompt.
    assert (api.get(c.SESSION_PLURAL, NAMESPACE, "prompted")["status"]["prompt"]["state"]) == "Pending"
    await asyncio.to_thread(first.stop)

    start_operator()
    await wait_session(api, "prompted", lambda o: (o["status"].get("prompt") or {}).get("state") == "Delivered")
    await wait_session(api, "prompted", lambda o: (o["status"].get("messageCount") or 0) >= 2)  # the turn ended
    async with http.get(url(gateway, "prompted")) as response:
        items = (await response.json())["items"]
    prompts = [f for f in items if f["event"] == "user_message" and "Only once, please." in json.dumps(f)]
    assert len(prompts) == 1


async def test_prompt_is_delivered_once_when_the_operator_restarts_after_sending(api, runner, start_operator, http, gateway):
    await prompt_survives_an_operator_restart(api, runner, start_operator, http, gateway, send_first=True)


async def test_prompt_is_delivered_once_when_the_operator_restarts_before_sending(api, runner, start_operator, http, gateway):
    await prompt_survives_an_operator_restart(api, runner, start_operator, http, gateway, send_first=False)


async def test_idle_stopped_session_is_woken_by_a_message_which_is_then_answered(api, operator, gateway, http):
    await running(api, "sleepy", lifecycle={"idleTimeout": "2s", "wakeOnMessage": True})
    stopped = await wait_session(api, "sleepy", lambda o: o["status"].get("phase") == c.PHASE_STOPPED)
    assert stopped["status"]["stoppedReason"] == c.STOPPED_IDLE_TIMEOUT
    timeout = aiohttp.ClientTimeout(total=60)
    async with http.post(url(gateway, "sleepy", "/messages"), json={"text": "wake up"}, timeout=timeout) as response:
        assert response.status == 200, await response.text()
        reply = await response.json()
    assert reply["text"] == "You said: wake up"
    obj = api.get(c.SESSION_PLURAL, NAMESPACE, "sleepy")
    assert obj["spec"] == stopped["spec"]  # woken without touching spec (no GitOps drift)
    # Woken by the gateway's signed wake request Event, not by a write to the session.
    requests = [e for e in api.list("events", NAMESPACE, label_selector=c.LABEL_WAKE_REQUEST)
                if e["involvedObject"]["name"] == "sleepy"]
    assert requests, "the gateway made no wake request"
    asked = {e["metadata"]["annotations"][c.ANNOTATION_WAKE_REQUESTED_AT] for e in requests}
    assert obj["status"]["wakeRequest"] in asked
    assert c.ANNOTATION_WAKE not in (obj["metadata"].get("annotations") or {})


SLOW_AGENT = {"image": "local", "command": DEMO,
              "env": [{"name": "DEMO_AGENT_CHUNK_DELAY", "value": "2"}]}


async def test_cancel_stops_the_callers_own_turn_but_not_one_the_operator_started(api, operator, gateway, http):
    # The real runtime records the gateway's sender-scoped message id in history: the gateway
    # reads it back to tell whose turn is running.
    await running(api, "mine", agent=SLOW_AGENT)
    async with http.post(url(gateway, "mine", "/messages"), params={"stream": "true"},
                         json={"text": "take your time"}) as stream:
        await read_sse(stream, lambda m: any(f["event"] == "agent_message_chunk" for f in m))
        async with http.post(url(gateway, "mine", "/cancel")) as response:
            assert (response.status, (await response.json())["cancelled"]) == (200, True)
        frames = await read_sse(stream, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    assert frames[-1]["data"]["stopReason"] == "cancelled"

    # spec.prompt is the operator's turn: alice may send, not cancel others' turns.
    await running(api, "prompted", agent=SLOW_AGENT, prompt="a long first task")
    async with asyncio.timeout(30):
        while True:
            async with http.get(url(gateway, "prompted")) as response:
                if ((await response.json())["runtime"] or {}).get("state") == "busy":
                    break
            await asyncio.sleep(0.1)
    async with http.post(url(gateway, "prompted", "/cancel")) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (403, "forbidden"), body
    assert "agentsessions/cancel" in body["message"]
