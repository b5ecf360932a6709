"""The reconciler deletes whatever the configuration says, and sanitises what it writes (issue 10).

`Reconciler.reconcile` with fake providers and the Kubernetes writes captured (status patch,
events, finalizer removal): no API server needed for the decisions made around `decide()`.
"""

from __future__ import annotations

import base64
import sys
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import CapabilitiesStatus
from agent_sessions.lifecycle import BackingState, Observation
from agent_sessions.providers.base import SessionRef
from agent_sessions.providers.errors import InvalidConfiguration, ProviderUnavailable
from agent_sessions.reconciler import reconcile as module
from agent_sessions.reconciler.reconcile import Reconciler
from agent_sessions.reconciler.sanitize import KnownSecrets, sanitized_status

SECRET = "s3cr3t-value-Zq81-hunter2"
R = "[REDACTED]"


class FakeProvider:
    """A provider that records its calls; `down` makes every call fail as unreachable."""

    def __init__(self, type_name: str = c.PROVIDER_POD, *, down: str | None = None) -> None:
        self.type_name = type_name
        self.down = down
        self.calls: list[tuple[str, dict]] = []

    def validate(self, config: Any, context: Any) -> list[str]:
        return []

    def capabilities(self) -> CapabilitiesStatus:
        return CapabilitiesStatus()

    async def observe(self, session: SessionRef) -> Observation:
        self.calls.append(("observe", dict(session.config)))
        if self.down:
            raise ProviderUnavailable(self.down)
        return Observation(BackingState.ABSENT)

    async def ensure(self, session: SessionRef) -> Any:
        self.calls.append(("ensure", dict(session.config)))
        if self.down:
            raise ProviderUnavailable(self.down)
        raise NotImplementedError("these tests place nothing")

    async def delete(self, session: SessionRef) -> bool:
        self.calls.append(("delete", dict(session.config)))
        if self.down:
            raise ProviderUnavailable(self.down)
        return True


class Recorded(Reconciler):
    """The reconciler with its Kubernetes writes recorded instead of sent."""

    removed: list[str]
    patches: list[dict]
    events: list[dict]

    async def _remove_finalizer(self, ref: SessionRef) -> bool:
        self.removed.append(ref.name)
        self._forget(ref.uid)
        return True

    async def _secret_values(self, body: Any, config: Any) -> list[str]:
        return [SECRET]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch):
    def make(providers: dict[str, FakeProvider]) -> Recorded:
        def lookup(name: str) -> FakeProvider:
            if name not in providers:
                raise InvalidConfiguration([f"spec.provider: provider {name!r} is not available in this operator"])
            return providers[name]

        reconciler = Recorded(api=None, providers=lookup)  # type: ignore[arg-type]
        reconciler.removed, reconciler.patches, reconciler.events = [], [], []

        async def patch_status(api: Any, namespace: str, name: str, patch: dict) -> dict:
            reconciler.patches.append(patch)
            return {"metadata": {"namespace": namespace, "name": name, "uid": "uid-1", "resourceVersion": "9"},
                    "status": patch}

        async def post_event(api: Any, event: dict) -> None:
            reconciler.events.append(event)

        monkeypatch.setattr(module, "patch_status", patch_status)
        monkeypatch.setattr(module, "post_event", post_event)
        return reconciler

    return make


def deleted_session(*, spec: dict, status: dict | None = None, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.SESSION_KIND,
        "metadata": {"name": "gone-wrong", "namespace": "team", "uid": "uid-1", "generation": 3,
                     "resourceVersion": "7", "finalizers": [c.FINALIZER],
                     "deletionTimestamp": "2025-03-01T09:00:00Z", "annotations": annotations or {}},
        "spec": spec,
        "status": status or {},
    }


RAN_ON_PODS = {"phase": c.PHASE_RUNNING, "provider": {"type": c.PROVIDER_POD, "id": "ags-team-gone-wrong-1234"}}
MISSING_TEMPLATE = {"templateRef": {"name": "nowhere"}}


async def test_a_session_that_never_resolved_loses_its_finalizer_without_any_provider(recorded):
    reconciler = recorded({})
    outcome = await reconciler.reconcile(deleted_session(spec=MISSING_TEMPLATE), {})
    assert outcome.gone and reconciler.removed == ["gone-wrong"]


async def test_what_ran_is_deleted_by_the_provider_status_names_though_the_configuration_no_longer_resolves(
        recorded):
    pods = FakeProvider()
    reconciler = recorded({c.PROVIDER_POD: pods})
    outcome = await reconciler.reconcile(deleted_session(spec=MISSING_TEMPLATE, status=RAN_ON_PODS), {})
    assert outcome.gone and reconciler.removed == ["gone-wrong"]
    assert [name for name, _ in pods.calls] == ["observe", "delete"]


async def test_what_ran_is_deleted_by_its_own_provider_when_the_configuration_now_names_another(recorded):
    pods, platform = FakeProvider(), FakeProvider(c.PROVIDER_HTTP, down="should not be asked")
    reconciler = recorded({c.PROVIDER_POD: pods, c.PROVIDER_HTTP: platform})
    spec = {"provider": "http", "http": {"url": "https://platform.example"}}
    outcome = await reconciler.reconcile(deleted_session(spec=spec, status=RAN_ON_PODS), {})
    assert outcome.gone and [name for name, _ in pods.calls] == ["observe", "delete"] and platform.calls == []


async def test_a_backing_whose_provider_this_operator_lacks_blocks_deletion_with_a_way_out(recorded):
    reconciler = recorded({})
    status = {"phase": c.PHASE_RUNNING, "provider": {"type": c.PROVIDER_TMUX, "id": "ags-team-gone-wrong"}}
    outcome = await reconciler.reconcile(deleted_session(spec=MISSING_TEMPLATE, status=status), {})
    assert not outcome.gone and outcome.backoff and reconciler.removed == []
    (patch,) = reconciler.patches
    ready = next(cond for cond in patch["conditions"] if cond["type"] == c.COND_READY)
    assert ready["reason"] == c.REASON_DELETION_BLOCKED
    assert "provider 'tmux' is not available in this operator" in ready["message"]
    assert f"{c.ANNOTATION_ABANDON}=true" in ready["message"]
    assert c.EVENT_DELETION_BLOCKED in [e["reason"] for e in reconciler.events]


async def test_an_unreachable_provider_blocks_deletion_and_its_error_is_redacted_everywhere(recorded):
    encoded = base64.b64encode(SECRET.encode()).decode()
    pods = FakeProvider(down=f"platform said: bad key {SECRET} (b64 {encoded}) split {SECRET[:8]}\n{SECRET[8:]}")
    reconciler = recorded({c.PROVIDER_POD: pods})
    outcome = await reconciler.reconcile(deleted_session(spec=MISSING_TEMPLATE, status=RAN_ON_PODS), {})
    assert not outcome.gone and outcome.backoff and reconciler.removed == []
    (patch,) = reconciler.patches
    assert patch["phase"] == c.PHASE_TERMINATING
    written = [cond["message"] for cond in patch["conditions"]] + [e["message"] for e in reconciler.events]
    assert any("platform said: bad key" in text for text in written)
    for text in written:
        compact = "".join(text.split())
        assert SECRET not in compact and encoded not in compact, text


async def test_the_abandon_annotation_removes_the_finalizer_without_asking_the_provider(recorded):
    pods = FakeProvider(down="connection refused")
    reconciler = recorded({c.PROVIDER_POD: pods})
    body = deleted_session(spec=MISSING_TEMPLATE, status=RAN_ON_PODS, annotations={c.ANNOTATION_ABANDON: "true"})
    outcome = await reconciler.reconcile(body, {})
    assert outcome.gone and reconciler.removed == ["gone-wrong"] and pods.calls == []
    (event,) = reconciler.events
    assert event["reason"] == c.EVENT_ABANDONED and event["type"] == c.EVENT_TYPE_WARNING
    assert "ags-team-gone-wrong-1234" in event["message"]


@pytest.mark.parametrize("value", ["false", "yes", "", "True "])
async def test_only_abandon_true_abandons(recorded, value):
    pods = FakeProvider(down="connection refused")
    reconciler = recorded({c.PROVIDER_POD: pods})
    body = deleted_session(spec=MISSING_TEMPLATE, status=RAN_ON_PODS, annotations={c.ANNOTATION_ABANDON: value})
    outcome = await reconciler.reconcile(body, {})
    assert not outcome.gone and reconciler.removed == [] and pods.calls


# --- the sanitiser -----------------------------------------------------------------------


def test_sanitised_status_redacts_and_strips_every_text_a_reader_sees():
    encoded = base64.b64encode(SECRET.encode()).decode()
    status = {
        "phase": "Running",
        "title": "\x1b]0;pwned\x07Deploy \x1b[31mnow\x1b[0m\x00",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Creating", "message": f"pull failed: {SECRET}\x1b[2J",
             "lastTransitionTime": "2025-03-01T09:00:00Z"},
            {"type": "Healthy", "status": "True", "reason": "ProbeSucceeded", "message": "",
             "lastTransitionTime": "2025-03-01T09:00:00Z"},
        ],
        "health": {"state": "Unhealthy", "message": f"exit 1: {encoded}\x07"},
        "sessionInfo": {"title": "t\x1b[1mitle\nx", "meta": {"k\x07": f"v {SECRET}"}},
        "logs": {"tail": f"line {SECRET}\n\x1b[32mgreen\x1b[0m\n"},
        "provider": {"type": "pod", "id": "ags-x", "endpoint": "http://10.0.0.1:8080"},
    }
    clean = sanitized_status(status, [SECRET])
    assert clean["title"] == "Deploy now"
    assert clean["conditions"][0]["message"] == f"pull failed: {R}"
    assert clean["conditions"][1] == status["conditions"][1]
    assert clean["health"]["message"] == f"exit 1: {R}"
    assert clean["sessionInfo"] == {"title": "title x", "meta": {"k": f"v {R}"}}
    assert clean["logs"] == status["logs"]  # redacted by its provider before it was cut; a log keeps its colours
    assert clean["provider"] == status["provider"]
    assert status["title"].startswith("\x1b")  # the input is not modified


def test_sanitising_is_idempotent_so_a_sanitised_status_is_never_written_again():
    status = {"title": "a\x1b[1mb", "conditions": [{"type": "Ready", "status": "False", "reason": "Creating",
                                                     "message": f"x {SECRET}", "lastTransitionTime": "t"}]}
    once = sanitized_status(status, [SECRET])
    assert sanitized_status(once, [SECRET]) == once


async def test_known_secrets_are_read_once_and_only_when_asked():
    reads = []

    async def load() -> list[str]:
        reads.append(1)
        return [SECRET]

    secrets = KnownSecrets(load)
    assert reads == []
    assert await secrets.values() == [SECRET] and await secrets.values() == [SECRET]
    assert reads == [1]


async def test_a_configuration_that_makes_resolution_raise_does_not_keep_the_session_from_going(
        recorded, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(module, "resolve_config", explode)
    pods = FakeProvider()
    reconciler = recorded({c.PROVIDER_POD: pods})
    outcome = await reconciler.reconcile(deleted_session(spec={"meta": {}}, status=RAN_ON_PODS), {})
    assert outcome.gone and [name for name, _ in pods.calls] == ["observe", "delete"]


async def test_a_provider_whose_validation_raises_does_not_keep_the_session_from_going(recorded):
    pods = FakeProvider()
    pods.validate = lambda config: 1 / 0  # type: ignore[method-assign]
    reconciler = recorded({c.PROVIDER_POD: pods})
    outcome = await reconciler.reconcile(deleted_session(spec={"agent": {"image": "x", "command": ["y"]}},
                                                         status=RAN_ON_PODS), {})
    assert outcome.gone and [name for name, _ in pods.calls] == ["observe", "delete"]


async def test_every_per_session_map_keys_on_one_shared_uid_string_whatever_copy_was_read(recorded):
    # Each read of a held session is a fresh copy (its own uid string); up to nine maps keep an
    # entry per session uid: one string per session, not one per map (memory at 10,000 sessions).
    platform = FakeProvider(c.PROVIDER_HTTP, down="platform unreachable")
    reconciler = recorded({c.PROVIDER_HTTP: platform})
    uid = "".join(["uid-", "7" * 32])  # built at run time: not the constant's object

    def copy(version: str) -> dict:
        return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                "metadata": {"name": "s", "namespace": "team", "uid": (uid + ".")[:-1], "generation": 1,
                             "resourceVersion": version, "finalizers": [c.FINALIZER]},
                "spec": {"provider": "http", "http": {"url": "https://platform.example"}}, "status": {}}

    first, second = copy("7"), copy("9")  # (9: what the recorded status patch returned)
    assert first["metadata"]["uid"] == second["metadata"]["uid"]
    assert first["metadata"]["uid"] is not second["metadata"]["uid"]
    await reconciler.reconcile(first, {})
    await reconciler.reconcile(second, {})
    keys = [key for held in (reconciler._phases, reconciler._retry_after, reconciler._last_info_read,
                             reconciler._info_interval) for key in held]
    assert keys, "the reconcile kept nothing per session: the test would prove nothing"
    assert all(key is sys.intern(uid) for key in keys)
