"""Issue 10, items 4 and 8: deleting a session always works, and what the operator writes where
readers of the session see it (status, Events) carries no secret and no terminal escape.

Each attack as it was reproduced, against the real operator on both backends (the strict
embedded API and a real kube-apiserver with the chart's RBAC):

* sessions whose configuration is invalid (template cycle, missing template, locked-field
  override, an image the pod provider cannot run) — broken while running, or from the start, or
  while the operator was down — are deleted: pods and claims gone, finalizer removed;
* a session whose platform is unreachable is retried with backoff, says so (Ready
  `DeletionBlocked` and one event, with how to give up), and the `agentsession.dev/abandon`
  annotation lets it go (an `Abandoned` event names what was left);
* a platform whose error text echoes a Secret (as written, base64, split over lines) does not get
  it into status or Events;
* titles with ESC/NUL/BEL (the author's, the agent's) are written without them.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.http_server import ThreadedServer
from support.operators import operator, operators, start_operator  # noqa: F401
from support.sessions import IMAGE, pods_of, session, template
from support.waits import condition, phase_is, ready, wait_session, wait_until

from agent_sessions.api import constants as c
from agent_sessions.dev.provider_server import ProviderServerThread
from agent_sessions.wire.runtime_client import Delivery
from agent_sessions.wire.runtime_info import RuntimeInfo

NAMESPACE = "default"
AGENT = {"image": IMAGE, "command": ["agent-sessions", "demo-agent"]}
SECRET_VALUE = "hunter2-Zq81-s3cr3t-value-9f8e7d"
TOKEN = "platform-token-4b1d9e7c"


def gone(api: Any, name: str) -> bool:
    return api.get(c.SESSION_PLURAL, NAMESPACE, name) is None


def claims(api: Any) -> list[dict]:
    return api.list("persistentvolumeclaims", NAMESPACE)


def events_of(api: Any, name: str) -> list[dict]:
    return [e for e in api.list("events", NAMESPACE) if e["involvedObject"]["name"] == name]


def reasons(api: Any, name: str) -> list[str]:
    return [e["reason"] for e in events_of(api, name)]


def config_invalid(obj: dict | None) -> bool:
    cond = condition(obj, c.COND_CONFIG_VALID)
    return cond is not None and cond["status"] == "False"


# --- invalid configurations ---------------------------------------------------------------

def break_config(api: Any, kind: str, name: str) -> None:
    """Make the configuration of session `name` (on template `base`) invalid, the way `kind` says."""
    if kind == "missing-template":
        api.delete(c.TEMPLATE_PLURAL, NAMESPACE, "base")
    elif kind == "template-cycle":
        api.patch(c.TEMPLATE_PLURAL, NAMESPACE, "base", {"spec": {"extends": "base"}})
    elif kind == "locked-field-override":
        api.patch(c.TEMPLATE_PLURAL, NAMESPACE, "base", {"spec": {"lockedFields": ["agent.image"]}})
        api.patch(c.SESSION_PLURAL, NAMESPACE, name, {"spec": {"agent": {"image": "evil.example/root:1"}}})
    elif kind == "bad-image":  # the pod provider cannot run it: no image at all
        api.patch(c.TEMPLATE_PLURAL, NAMESPACE, "base", {"spec": {"agent": {"image": None}}})
    else:
        raise AssertionError(kind)


def invalid_from_the_start(api: Any, kind: str, name: str) -> None:
    if kind == "missing-template":
        api.create(c.SESSION_PLURAL, session(name, templateRef={"name": "nowhere"}))
    elif kind == "template-cycle":
        api.create(c.TEMPLATE_PLURAL, template("a", extends="b", agent=AGENT))
        api.create(c.TEMPLATE_PLURAL, template("b", extends="a"))
        api.create(c.SESSION_PLURAL, session(name, templateRef={"name": "a"}))
    elif kind == "locked-field-override":
        api.create(c.TEMPLATE_PLURAL, template("base", agent=AGENT, lockedFields=["agent.image"]))
        api.create(c.SESSION_PLURAL, session(name, templateRef={"name": "base"},
                                             agent={"image": "evil.example/root:1"}))
    elif kind == "bad-image":
        api.create(c.SESSION_PLURAL, session(name, agent={"command": ["agent-sessions", "demo-agent"]}))
    else:
        raise AssertionError(kind)


KINDS = ("template-cycle", "missing-template", "locked-field-override", "bad-image")


@pytest.mark.parametrize("kind", KINDS)
def test_a_session_whose_configuration_broke_while_it_ran_is_deleted_cleanly(api, operator, kind):
    api.create(c.TEMPLATE_PLURAL, template("base", agent=AGENT, workspace={"size": "1Gi"}))
    api.create(c.SESSION_PLURAL, session("broken", templateRef={"name": "base"}))
    wait_session(api, "broken", ready)
    assert pods_of(api, "broken") and claims(api)

    break_config(api, kind, "broken")
    wait_session(api, "broken", config_invalid)
    api.delete(c.SESSION_PLURAL, NAMESPACE, "broken")

    wait_until(lambda: gone(api, "broken"), what="the session deleted")
    wait_until(lambda: not pods_of(api, "broken") and not claims(api), what="its pod and claim deleted")


@pytest.mark.parametrize("kind", KINDS)
def test_a_session_invalid_from_the_start_is_deleted(api, operator, kind):
    invalid_from_the_start(api, kind, "never-ran")
    obj = wait_session(api, "never-ran", phase_is(c.PHASE_FAILED))
    assert config_invalid(obj) and c.FINALIZER in obj["metadata"]["finalizers"]

    api.delete(c.SESSION_PLURAL, NAMESPACE, "never-ran")
    wait_until(lambda: gone(api, "never-ran"), what="the session deleted")
    assert not pods_of(api, "never-ran")


def test_a_session_broken_and_deleted_while_the_operator_was_down_is_deleted_when_it_is_back(
        api, kubelet, start_operator):
    first = start_operator()
    api.create(c.TEMPLATE_PLURAL, template("base", agent=AGENT, workspace={"size": "1Gi"}))
    api.create(c.SESSION_PLURAL, session("orphaned", templateRef={"name": "base"}))
    wait_session(api, "orphaned", ready)
    first.stop()

    break_config(api, "template-cycle", "orphaned")
    api.delete(c.SESSION_PLURAL, NAMESPACE, "orphaned")
    time.sleep(0.5)
    assert not gone(api, "orphaned")  # held by the finalizer while nobody cleans up

    start_operator()
    wait_until(lambda: gone(api, "orphaned"), what="the session deleted")
    wait_until(lambda: not pods_of(api, "orphaned") and not claims(api), what="its pod and claim deleted")


# --- an unreachable platform ----------------------------------------------------------------

@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ProviderServerThread]:
    """The reference platform, which the test may stop (it is then unreachable)."""
    server = ProviderServerThread(tokens=[TOKEN], workdir=tmp_path / "platform").start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.stop()

    server.stop_now = stop  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        stop()


def token_secret(api: Any) -> None:
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "platform", "namespace": NAMESPACE},
                           "type": "Opaque", "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})


def http_session(name: str, url: str, **spec: Any) -> dict:
    http = {"url": url, "credentialsSecretRef": {"name": "platform", "key": "token"},
            "maxRetries": 0, "timeoutSeconds": 2}
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"provider": "http", "http": http, **spec}}


def deletion_blocked(obj: dict | None) -> bool:
    cond = condition(obj, c.COND_READY)
    return cond is not None and cond["reason"] == c.REASON_DELETION_BLOCKED


def test_an_unreachable_platform_is_retried_with_backoff_until_an_admin_abandons_the_session(
        api, platform, start_operator):
    token_secret(api)
    start_operator(http_platforms=(platform.url,))
    uid = held_http_session(api, platform, "stranded")

    platform.stop_now()
    api.delete(c.SESSION_PLURAL, NAMESPACE, "stranded")
    blocked = wait_session(api, "stranded", deletion_blocked)
    assert blocked["status"]["phase"] == c.PHASE_TERMINATING
    message = condition(blocked, c.COND_READY)["message"]
    assert f"cannot delete the http backing {uid}" in message
    assert "retrying with backoff" in message
    assert f"kubectl annotate agentsession stranded {c.ANNOTATION_ABANDON}=true" in message
    assert condition(blocked, c.COND_PROVIDER_AVAILABLE)["status"] == "False"

    wait_until(lambda: c.EVENT_DELETION_BLOCKED in reasons(api, "stranded"), what="the DeletionBlocked event")
    time.sleep(4)  # several retries (1 s, 2 s, …): still there, and the event was posted once
    obj = api.get(c.SESSION_PLURAL, NAMESPACE, "stranded")
    assert obj is not None and c.FINALIZER in obj["metadata"]["finalizers"]
    assert reasons(api, "stranded").count(c.EVENT_DELETION_BLOCKED) == 1

    api.patch(c.SESSION_PLURAL, NAMESPACE, "stranded", {"metadata": {"annotations": {c.ANNOTATION_ABANDON: "true"}}})
    wait_until(lambda: gone(api, "stranded"), what="the abandoned session deleted")
    abandoned = wait_until(lambda: [e for e in events_of(api, "stranded") if e["reason"] == c.EVENT_ABANDONED],
                           what="the Abandoned event")
    assert abandoned[0]["type"] == c.EVENT_TYPE_WARNING
    assert f"deletion of the http backing {uid} abandoned" in abandoned[0]["message"]


def held_http_session(api: Any, platform: ProviderServerThread, name: str) -> str:
    """An http session created and held Pending on the platform; its uid."""
    platform.hold(True)  # no runtime to run
    api.create(c.SESSION_PLURAL, http_session(name, platform.url))
    created = wait_session(api, name, lambda o: ((o or {}).get("status", {}).get("provider") or {}).get("id"))
    return created["metadata"]["uid"]


def test_an_http_session_whose_configuration_broke_is_deleted_on_its_platform(api, platform, start_operator):
    token_secret(api)
    start_operator(http_platforms=(platform.url,))
    held_http_session(api, platform, "unmoored")
    api.patch(c.SESSION_PLURAL, NAMESPACE, "unmoored", {"spec": {"templateRef": {"name": "nowhere"}}})
    wait_session(api, "unmoored", config_invalid)

    api.delete(c.SESSION_PLURAL, NAMESPACE, "unmoored")
    wait_until(lambda: gone(api, "unmoored"), what="the session deleted")
    assert platform.stats()["sessions"] == 0


def test_an_http_session_broken_while_the_operator_was_down_can_be_abandoned(api, platform, start_operator):
    """The platform's address came from the configuration, which no longer resolves, and a
    restarted operator has not seen it: deletion is blocked (not silently stuck) until abandoned."""
    token_secret(api)
    first = start_operator(http_platforms=(platform.url,))
    uid = held_http_session(api, platform, "adrift")
    first.stop()
    api.patch(c.SESSION_PLURAL, NAMESPACE, "adrift", {"spec": {"templateRef": {"name": "nowhere"}}})
    api.delete(c.SESSION_PLURAL, NAMESPACE, "adrift")

    start_operator(http_platforms=(platform.url,))
    blocked = wait_session(api, "adrift", deletion_blocked)
    message = condition(blocked, c.COND_READY)["message"]
    assert f"cannot delete the http backing {uid}: the session's platform is unknown" in message
    assert f"{c.ANNOTATION_ABANDON}=true" in message

    api.patch(c.SESSION_PLURAL, NAMESPACE, "adrift", {"metadata": {"annotations": {c.ANNOTATION_ABANDON: "true"}}})
    wait_until(lambda: gone(api, "adrift"), what="the abandoned session deleted")
    assert platform.stats()["sessions"] == 1  # left behind, as the Abandoned event says
    # The operator posts its events once the finalizer is gone: the event follows the deletion.
    wait_until(lambda: c.EVENT_ABANDONED in reasons(api, "adrift"), what="the Abandoned event")


def test_the_abandon_annotation_does_nothing_to_a_session_that_is_not_being_deleted(api, operator):
    api.create(c.SESSION_PLURAL, session("kept", agent=AGENT))
    wait_session(api, "kept", ready)
    api.patch(c.SESSION_PLURAL, NAMESPACE, "kept", {"metadata": {"annotations": {c.ANNOTATION_ABANDON: "true"}}})
    time.sleep(1)
    obj = wait_session(api, "kept", ready)
    assert c.FINALIZER in obj["metadata"]["finalizers"] and pods_of(api, "kept")
    assert c.EVENT_ABANDONED not in reasons(api, "kept")


# --- a platform error echoing a secret ------------------------------------------------------

class EchoingPlatform(ThreadedServer):
    """A platform that answers everything with 503 and an error message echoing `message` (a
    platform that includes what it was sent in its errors, or an attacker's)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    async def answer(self, request: web.Request) -> web.Response:
        return web.json_response({"code": "provider_unavailable", "message": self.message}, status=503)


def secret_forms(value: str) -> dict[str, str]:
    return {
        "plain": value,
        "base64": base64.b64encode(value.encode()).decode(),
        "base64-url-safe-in-basic-auth": base64.urlsafe_b64encode(f"svc:{value}".encode()).decode(),
        "split": f"{value[:9]}\n{value[9:20]} {value[20:]}",
    }


def leaks(text: str, value: str) -> list[str]:
    """Which forms of `value` are in `text` (whitespace ignored, so a split form counts)."""
    compact = "".join(text.split())
    found = [name for name, form in secret_forms(value).items() if "".join(form.split()) in compact]
    encoded = base64.b64encode(value.encode()).decode()
    if encoded[4:-4] in compact:
        found.append("base64 core")
    return found


def test_a_platform_error_echoing_a_secret_reaches_neither_status_nor_events(api, start_operator):
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team", "namespace": NAMESPACE},
                           "type": "Opaque", "data": {"key": base64.b64encode(SECRET_VALUE.encode()).decode()}})
    token_secret(api)
    forms = secret_forms(SECRET_VALUE)
    echo = "upstream refused " + " | ".join(f"{name}: {form}" for name, form in forms.items()) + f" token {TOKEN}"
    with EchoingPlatform(echo) as platform:
        start_operator(http_platforms=(platform.url,))
        env = [{"name": "TEAM_KEY", "valueFrom": {"secretKeyRef": {"name": "team", "key": "key"}}}]
        api.create(c.SESSION_PLURAL, http_session("echoed", platform.url, agent={"env": env}))
        obj = wait_session(api, "echoed", lambda o: (condition(o, c.COND_PROVIDER_AVAILABLE) or {}).get("status")
                           == "False")
        wait_until(lambda: c.EVENT_PROVIDER_UNAVAILABLE in reasons(api, "echoed"), what="the ProviderUnavailable event")

        message = condition(obj, c.COND_PROVIDER_AVAILABLE)["message"]
        assert "upstream refused" in message and "[REDACTED]" in message  # the platform's words, minus the secrets
        status = json.dumps(obj["status"])
        assert leaks(status, SECRET_VALUE) == [] and TOKEN not in status
        events = json.dumps([e["message"] for e in events_of(api, "echoed")])
        assert "upstream refused" in events
        assert leaks(events, SECRET_VALUE) == [] and TOKEN not in events


# --- titles ---------------------------------------------------------------------------------

class TitledRuntime:
    """A runtime whose agent sets a title full of terminal controls."""

    def __init__(self, title: str) -> None:
        self.title = title

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        return RuntimeInfo(session_info={"title": self.title})

    async def deliver(self, endpoint: str, text: str, message_id: str, session: Any = None) -> Delivery:
        return Delivery(accepted=True)

    async def close(self) -> None:
        pass


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mFix\x00 the\x07 build\x1b[0m\x9b1m\x7f"


def test_an_agent_title_with_terminal_escapes_is_shown_stripped(api, kubelet, start_operator):
    start_operator(runtime_client_factory=lambda: TitledRuntime(ESCAPES))
    api.create(c.SESSION_PLURAL, session("titled", agent=AGENT))
    obj = wait_session(api, "titled", lambda o: ready(o) and (o["status"].get("title") or ""))
    assert obj["status"]["title"] == "Fix the build"  # what `kubectl get` shows in the Title column
    assert obj["status"]["sessionInfo"]["title"] == "Fix the build"


def test_an_authors_title_with_terminal_escapes_is_shown_stripped(api, operator):
    api.create(c.SESSION_PLURAL, session("authored", agent=AGENT, title="\x1b[8mhidden\x1b[0m ok\x07\nnext"))
    obj = wait_session(api, "authored", lambda o: ready(o) and o["status"].get("title"))
    assert obj["status"]["title"] == "hidden ok next"
