"""PodProvider against a fake CoreV1Api: idempotency, 404/409 handling, error mapping, logs.

The fake keeps objects in dicts and answers like the API server does (409 on create of an
existing name, 404 on a missing one, graceful deletion leaving a `deletionTimestamp`). No
network; the real API server comes with the integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.lifecycle import BackingState
from agent_sessions.providers import (
    REDACTED,
    InvalidConfiguration,
    ProviderError,
    ProviderRef,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
    SessionRef,
    ValidationContext,
)
from agent_sessions.providers.pod import PodProvider, pod_name, pvc_name
from agent_sessions.providers.pod.names import token_secret_name
from agent_sessions.providers.pod.api_errors import api_error
from agent_sessions.providers.pod.logs import SecretReference, secret_references, secret_values

UID = "0b6c3a1e-8f5d-4c1b-9a77-3f2f1e0d9c8b"
NS = "team-a"
CONFIG = {
    "provider": "pod",
    "agent": {
        "image": "ghcr.io/acme/agent:1.4",
        "command": ["agent"],
        "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}}],
        "envFrom": [{"secretRef": {"name": "bundle"}}],
    },
    "workspace": {"size": "1Gi", "accessModes": ["ReadWriteOnce"]},
    "lifecycle": {"restartPolicy": "OnFailure"},
}
SESSION = SessionRef(namespace=NS, name="demo", uid=UID, config=CONFIG)
RESUMED = dataclasses.replace(SESSION, placed_before=True)
"""The same session once a backing was made for it (its status records `provider.id`)."""
NO_WORKSPACE = SessionRef(namespace=NS, name="demo", uid=UID,
                          config={**CONFIG, "workspace": {"accessModes": ["ReadWriteOnce"]}})
POD = pod_name(NS, "demo", UID)
PVC = pvc_name(NS, "demo", UID)


def api_exception(status: int, message: str = "", reason: str = "", headers: dict | None = None) -> ApiException:
    error = ApiException(status=status, reason=reason or {404: "Not Found", 409: "Conflict"}.get(status, "Error"))
    error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                             "code": status}).encode()
    error.headers = headers
    return error


def encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class FakeCoreV1Api:
    """The CoreV1Api methods PodProvider uses, over dicts."""

    def __init__(self, *, graceful: bool = False) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.logs: dict[str, Any] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.fail: dict[str, BaseException] = {}
        self.graceful = graceful
        self.pod_watchers: list[Callable[[str | None, dict], None]] = []
        """What the operator's pod watch feeds (`watching`): told of every pod change, as the watch would."""

    def put(self, kind: str, obj: dict) -> None:
        self.objects[(kind, obj["metadata"].get("namespace", NS), obj["metadata"]["name"])] = obj
        if kind == "pod":
            self.pod_changed("MODIFIED", obj)

    def finish_deletions(self) -> None:
        """The kubelet and the pvc-protection controller finished: every object is gone."""
        for (kind, _, _), obj in list(self.objects.items()):
            if kind == "pod":
                self.pod_changed("DELETED", obj)
        self.objects.clear()

    def pod_changed(self, event: str, pod: dict) -> None:
        for watcher in self.pod_watchers:
            watcher(event, copy.deepcopy(pod))

    def has(self, kind: str, name: str) -> bool:
        return (kind, NS, name) in self.objects

    def _enter(self, method: str, name: str, kwargs: dict) -> None:
        self.calls.append((method, name, kwargs))
        if method in self.fail:
            raise self.fail[method]

    async def _create(self, kind: str, method: str, namespace: str, body: dict, kwargs: dict) -> dict:
        name = body["metadata"]["name"]
        self._enter(method, name, kwargs)
        if (kind, namespace, name) in self.objects:
            raise api_exception(409, f'{kind}s "{name}" already exists')
        stored = copy.deepcopy(body)
        stored["metadata"]["uid"] = f"{kind}-uid"
        self.objects[(kind, namespace, name)] = stored
        if kind == "pod":
            self.pod_changed("ADDED", stored)
        return copy.deepcopy(stored)

    async def _read(self, kind: str, method: str, name: str, namespace: str, kwargs: dict) -> dict:
        self._enter(method, name, kwargs)
        try:
            return copy.deepcopy(self.objects[(kind, namespace, name)])
        except KeyError:
            raise api_exception(404, f'{kind}s "{name}" not found') from None

    async def _delete(self, kind: str, method: str, name: str, namespace: str, kwargs: dict) -> dict:
        self._enter(method, name, kwargs)
        key = (kind, namespace, name)
        if key not in self.objects:
            raise api_exception(404, f'{kind}s "{name}" not found')
        if self.graceful:
            self.objects[key]["metadata"]["deletionTimestamp"] = "2025-03-01T09:00:00Z"
            if kind == "pod":
                self.pod_changed("MODIFIED", self.objects[key])
            return copy.deepcopy(self.objects[key])
        if kind == "pod":
            self.pod_changed("DELETED", self.objects[key])
        return self.objects.pop(key)

    async def create_namespaced_pod(self, namespace, body, **kwargs):
        return await self._create("pod", "create_namespaced_pod", namespace, body, kwargs)

    async def read_namespaced_pod(self, name, namespace, **kwargs):
        return await self._read("pod", "read_namespaced_pod", name, namespace, kwargs)

    async def delete_namespaced_pod(self, name, namespace, **kwargs):
        return await self._delete("pod", "delete_namespaced_pod", name, namespace, kwargs)

    async def create_namespaced_persistent_volume_claim(self, namespace, body, **kwargs):
        return await self._create("pvc", "create_namespaced_persistent_volume_claim", namespace, body, kwargs)

    async def read_namespaced_persistent_volume_claim(self, name, namespace, **kwargs):
        return await self._read("pvc", "read_namespaced_persistent_volume_claim", name, namespace, kwargs)

    async def delete_namespaced_persistent_volume_claim(self, name, namespace, **kwargs):
        return await self._delete("pvc", "delete_namespaced_persistent_volume_claim", name, namespace, kwargs)

    async def read_namespaced_secret(self, name, namespace, **kwargs):
        return await self._read("secret", "read_namespaced_secret", name, namespace, kwargs)

    async def create_namespaced_secret(self, namespace, body, **kwargs):
        return await self._create("secret", "create_namespaced_secret", namespace, body, kwargs)

    async def read_namespace(self, name, **kwargs):
        return await self._read("namespace", "read_namespace", name, None, kwargs)

    async def read_namespaced_pod_log(self, name, namespace, **kwargs):
        self._enter("read_namespaced_pod_log", name, kwargs)
        if ("pod", namespace, name) not in self.objects:
            raise api_exception(404, f'pods "{name}" not found')
        return self.logs.get(name, b"")


class RawResponse:
    """What the client returns with `_preload_content=False` (an aiohttp response)."""

    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.reason, self.headers, self._data = status, "X", {}, data
        self.released = False

    async def read(self) -> bytes:
        return self._data

    def release(self) -> None:
        self.released = True


@pytest.fixture
def core() -> FakeCoreV1Api:
    return FakeCoreV1Api()


def watching(provider: PodProvider, core: FakeCoreV1Api) -> PodProvider:
    """`provider` with its pod store fed by `core`'s pod changes, as the operator's pod watch feeds it."""
    core.pod_watchers.append(provider.pods.seen)
    provider.pods.watched = True
    return provider


@pytest.fixture
def provider(core) -> PodProvider:
    return watching(PodProvider(core_api=core), core)


def created(core: FakeCoreV1Api) -> list[tuple[str, str]]:
    return [(method, name) for method, name, _ in core.calls if method.startswith("create")]


def running(core: FakeCoreV1Api, ip: str = "10.1.2.3", *, restarts: int = 0, state: dict | None = None) -> None:
    pod = core.objects[("pod", NS, POD)]
    pod["status"] = {
        "phase": "Running", "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "agent", "ready": state is None, "restartCount": restarts,
                               "state": state or {"running": {}}}],
    }
    core.pod_changed("MODIFIED", pod)


# --- ensure ---------------------------------------------------------------------------------


async def test_ensure_creates_the_workspace_claim_then_the_pod(provider, core):
    ref = await provider.ensure(SESSION)
    assert ref == ProviderRef(type="pod", id=POD, endpoint=None)
    assert created(core) == [("create_namespaced_persistent_volume_claim", PVC), ("create_namespaced_pod", POD)]
    assert core.objects[("pod", NS, POD)]["metadata"]["labels"][c.LABEL_SESSION_UID] == UID


async def test_ensure_without_a_workspace_creates_only_the_pod(provider, core):
    await provider.ensure(NO_WORKSPACE)
    assert created(core) == [("create_namespaced_pod", POD)]


async def test_a_second_ensure_creates_nothing_and_returns_the_same_backing(provider, core):
    first = await provider.ensure(SESSION)
    running(core)
    second = await provider.ensure(RESUMED)
    assert second == ProviderRef(type="pod", id=first.id, endpoint="http://10.1.2.3:8080")
    assert len([key for key in core.objects if key[0] == "pod"]) == 1
    # The claim is created at once the first time, read first once a backing was made (it usually
    # exists: no refused create); the pod is read back after its 409. The namespace's labels are
    # read once (cached for the TTL).
    assert [m for m, _, _ in core.calls if m.startswith("read")] == [
        "read_namespace", "read_namespaced_persistent_volume_claim", "read_namespaced_pod"]
    assert created(core) == [("create_namespaced_persistent_volume_claim", PVC), ("create_namespaced_pod", POD),
                             ("create_namespaced_pod", POD)]


async def test_a_first_start_creates_without_checking_first():
    core = FakeCoreV1Api()
    provider = watching(PodProvider(core_api=core), core)
    await provider.ensure(SESSION)
    assert [m for m, _, _ in core.calls] == [
        "read_namespace",  # its pod-security.kubernetes.io/enforce label may raise the policy level
        "create_namespaced_persistent_volume_claim",  # nothing was made before: no read first
        "create_namespaced_pod",  # never checked first: the 409 decides
    ]


async def test_a_resume_reads_the_claim_first_and_makes_no_refused_create(provider, core):
    await provider.ensure(SESSION)
    core.objects = {key: obj for key, obj in core.objects.items() if key[0] != "pod"}  # stopped: the pod went
    core.calls.clear()
    await provider.ensure(RESUMED)
    assert [m for m, _, _ in core.calls] == [
        "read_namespaced_persistent_volume_claim", "create_namespaced_pod"]
    assert created(core) == [("create_namespaced_pod", POD)]


async def test_a_first_start_whose_claim_exists_already_adopts_it_after_the_409(provider, core):
    # The status write after an earlier ensure failed: the claim exists, the status does not say so.
    await provider.ensure(SESSION)
    core.objects = {key: obj for key, obj in core.objects.items() if key[0] != "pod"}
    await provider.ensure(SESSION)
    assert core.has("pod", POD) and core.has("pvc", PVC)


async def test_concurrent_ensures_create_one_pod(provider, core):
    refs = await asyncio.gather(*(provider.ensure(SESSION) for _ in range(5)))
    assert {ref.id for ref in refs} == {POD}
    assert len([key for key in core.objects if key[0] == "pod"]) == 1


async def test_resume_reuses_the_kept_workspace(provider, core):
    await provider.ensure(SESSION)
    await provider.stop(SESSION)
    await provider.ensure(SESSION)
    assert core.has("pod", POD) and core.has("pvc", PVC)


@pytest.mark.parametrize("kind", ["pod", "pvc"])
async def test_ensure_refuses_to_adopt_another_sessions_object(provider, core, kind):
    name = POD if kind == "pod" else PVC
    core.put(kind, {"metadata": {"name": name, "namespace": NS, "labels": {c.LABEL_SESSION_UID: "someone-else"},
                                 "ownerReferences": [{"uid": "someone-else"}]}})
    with pytest.raises(SessionAlreadyExists, match="does not belong to AgentSession demo"):
        await provider.ensure(SESSION)


async def test_ensure_validates_before_any_request(provider, core):
    broken = SessionRef(namespace=NS, name="demo", uid=UID, config={**CONFIG, "agent": {"image": "x"}})
    with pytest.raises(InvalidConfiguration, match="spec.agent.command"):
        await provider.ensure(broken)
    assert core.calls == []


@pytest.mark.parametrize(
    ("failure", "expected", "detail"),
    [
        pytest.param(api_exception(422, 'Pod "x" is invalid: spec.containers[0].image: Required value'),
                     InvalidConfiguration, "spec.containers[0].image: Required value", id="422-invalid"),
        pytest.param(api_exception(403, 'pods "x" is forbidden: violates PodSecurity "restricted:latest"'),
                     InvalidConfiguration, "violates PodSecurity", id="403-admission"),
        pytest.param(api_exception(400, "bad request body"), InvalidConfiguration, "bad request body", id="400"),
        pytest.param(api_exception(403, 'pods "x" is forbidden: exceeded quota: agents, requested: pods=1'),
                     ProviderUnavailable, "exceeded quota", id="403-quota-is-transient"),
        pytest.param(api_exception(500, "etcdserver: request timed out"), ProviderUnavailable, "etcdserver",
                     id="500"),
        pytest.param(api_exception(429, "too many requests", headers={"Retry-After": "3"}), ProviderUnavailable,
                     "too many requests", id="429"),
        pytest.param(api_exception(401, "Unauthorized"), ProviderUnavailable, "credentials were rejected",
                     id="401"),
        pytest.param(api_exception(404, 'namespaces "team-a" not found'), SessionNotFound, "namespaces", id="404"),
        pytest.param(aiohttp.ClientConnectionError("connection refused"), ProviderUnavailable,
                     "could not be reached: connection refused", id="connection-refused"),
        pytest.param(asyncio.TimeoutError(), ProviderUnavailable, "could not be reached: TimeoutError",
                     id="timeout"),
    ],
)
async def test_ensure_maps_api_failures_to_typed_errors(provider, core, failure, expected, detail):
    core.fail["create_namespaced_pod"] = failure
    with pytest.raises(expected) as caught:
        await provider.ensure(SESSION)
    assert detail in str(caught.value)
    assert f"create pod {POD}" in str(caught.value)


async def test_unavailable_carries_retry_after(provider, core):
    core.fail["create_namespaced_pod"] = api_exception(503, "unavailable", headers={"Retry-After": "12"})
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.ensure(SESSION)
    assert caught.value.retry_after == 12.0


async def test_every_request_has_a_timeout(provider, core):
    await provider.ensure(SESSION)
    await provider.observe(SESSION)
    assert all(kwargs.get("_request_timeout") == 30.0 for _, _, kwargs in core.calls)


# --- observe, stop, delete ------------------------------------------------------------------


async def test_observe_without_a_pod_is_absent(provider):
    assert (await provider.observe(SESSION)).state == BackingState.ABSENT


async def test_observe_maps_the_pod(provider, core):
    await provider.ensure(SESSION)
    running(core)
    observation = await provider.observe(SESSION)
    assert (observation.state, observation.ready, observation.id, observation.endpoint) == (
        BackingState.RUNNING, True, POD, "http://10.1.2.3:8080")


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        pytest.param(api_exception(503, "the server is currently unable to handle the request"), "unable to handle",
                     id="503"),
        pytest.param(api_exception(403, 'pods "x" is forbidden: User cannot get resource'), "check the operator's RBAC",
                     id="forbidden-read-is-an-operator-problem"),
        pytest.param(aiohttp.ServerDisconnectedError(), "could not be reached", id="disconnected"),
    ],
)
async def test_observe_reports_an_unreachable_api_as_unavailable(provider, core, failure, message):
    core.fail["read_namespaced_pod"] = failure
    with pytest.raises(ProviderUnavailable, match=message):
        await provider.observe(SESSION)


async def test_stop_deletes_the_pod_and_keeps_the_workspace(provider, core):
    await provider.ensure(SESSION)
    await provider.stop(SESSION)
    assert not core.has("pod", POD)
    assert core.has("pvc", PVC)
    await provider.stop(SESSION)  # not found = done


async def test_after_a_graceful_stop_the_pod_is_observed_terminating():
    core = FakeCoreV1Api(graceful=True)
    provider = watching(PodProvider(core_api=core), core)
    await provider.ensure(SESSION)
    running(core, restarts=2)
    await provider.stop(SESSION)
    assert (await provider.observe(SESSION)).state == BackingState.TERMINATING


async def test_ensure_while_the_old_pod_terminates_returns_it_and_creates_nothing():
    core = FakeCoreV1Api(graceful=True)
    provider = watching(PodProvider(core_api=core), core)
    await provider.ensure(SESSION)
    await provider.stop(SESSION)
    assert (await provider.ensure(SESSION)).id == POD
    assert (await provider.observe(SESSION)).state == BackingState.TERMINATING  # the lifecycle waits for it


async def test_delete_removes_pod_and_workspace(provider, core):
    await provider.ensure(SESSION)
    assert await provider.delete(SESSION) is True
    assert not core.has("pod", POD) and not core.has("pvc", PVC)


async def test_delete_of_nothing_is_done(provider):
    assert await provider.delete(SESSION) is True


async def test_delete_is_not_done_while_objects_terminate():
    core = FakeCoreV1Api(graceful=True)
    provider = watching(PodProvider(core_api=core), core)
    await provider.ensure(SESSION)
    assert await provider.delete(SESSION) is False
    core.finish_deletions()
    assert await provider.delete(SESSION) is True


async def test_objects_already_terminating_are_waited_for_not_deleted_again():
    core = FakeCoreV1Api(graceful=True)
    provider = watching(PodProvider(core_api=core), core)
    await provider.ensure(SESSION)
    await provider.stop(SESSION)
    await provider.stop(SESSION)
    assert await provider.delete(SESSION) is False
    assert await provider.delete(SESSION) is False
    deletes = [(m, n) for m, n, _ in core.calls if m.startswith("delete")]
    assert deletes == [("delete_namespaced_pod", POD), ("delete_namespaced_persistent_volume_claim", PVC)]


async def test_delete_reports_an_unreachable_api(provider, core):
    await provider.ensure(SESSION)
    core.fail["delete_namespaced_pod"] = api_exception(502, "bad gateway")
    with pytest.raises(ProviderUnavailable):
        await provider.delete(SESSION)


# --- logs -----------------------------------------------------------------------------------


def with_secrets(core: FakeCoreV1Api) -> None:
    core.put("secret", {"metadata": {"name": "creds", "namespace": NS},
                        "data": {"api-key": encoded("k3y-from-creds"), "other": encoded("not-in-env-0")}})
    core.put("secret", {"metadata": {"name": "bundle", "namespace": NS},
                        "data": {"DB_PASSWORD": encoded("correct horse battery")}})


async def test_logs_redact_the_values_of_the_pods_secrets(provider, core):
    await provider.ensure(SESSION)
    with_secrets(core)
    core.logs[POD] = (b"using k3y-from-creds\ndb correct horse battery\nnot-in-env-0 is fine\n"
                      b"Authorization: Bearer abc123def456\n")
    text = await provider.logs(SESSION, tail_lines=50, limit_bytes=8192)
    assert text == (f"using {REDACTED}\ndb {REDACTED}\nnot-in-env-0 is fine\nAuthorization: Bearer {REDACTED}\n")
    assert text.truncated is False


async def test_logs_ask_one_line_more_to_know_whether_older_output_exists(provider, core):
    await provider.ensure(NO_WORKSPACE)
    core.logs[POD] = b"a\nb\nc\n"  # the fake returns what the API would for tail_lines=3
    text = await provider.logs(NO_WORKSPACE, tail_lines=2, limit_bytes=8192)
    assert (text, text.truncated) == ("b\nc\n", True)
    (_, _, kwargs), = [call for call in core.calls if call[0] == "read_namespaced_pod_log"]
    assert kwargs["tail_lines"] == 3
    assert kwargs["container"] == "agent"
    assert kwargs["_preload_content"] is False


async def test_logs_are_bounded_in_bytes_after_redaction(provider, core):
    await provider.ensure(NO_WORKSPACE)
    core.logs[POD] = b"x" * 100 + b"\npassword=hunter2\n"
    text = await provider.logs(NO_WORKSPACE, tail_lines=50, limit_bytes=30)
    assert text == f"password={REDACTED}\n"
    assert text.truncated


async def test_logs_fall_back_to_patterns_when_secrets_cannot_be_read(provider, core):
    await provider.ensure(SESSION)
    core.fail["read_namespaced_secret"] = api_exception(403, 'secrets "creds" is forbidden')
    core.logs[POD] = b"token=abc123\n"
    assert await provider.logs(SESSION, 50, 8192) == f"token={REDACTED}\n"


async def test_the_runtime_token_is_redacted_from_logs_without_reading_its_secret(core):
    # The operator derives the token from its key: the Secret holding it is never read for a log.
    from agent_sessions.wire.credentials import session_token

    key = b"k" * 32
    provider = watching(PodProvider(core_api=core, runtime_key=key), core)
    await provider.ensure(NO_WORKSPACE)
    token = session_token(key, UID)
    core.logs[POD] = f"bearer {token}\n".encode()
    core.calls.clear()
    assert await provider.logs(NO_WORKSPACE, 50, 8192) == f"bearer {REDACTED}\n"
    read = [name for m, name, _ in core.calls if m == "read_namespaced_secret"]
    assert token_secret_name(NS, "demo", UID) not in read and read  # the session's own Secrets are read


async def test_logs_fail_rather_than_publish_when_secrets_are_unavailable(provider, core):
    await provider.ensure(SESSION)
    core.fail["read_namespaced_secret"] = api_exception(500, "internal error")
    core.logs[POD] = b"k3y-from-creds\n"
    with pytest.raises(ProviderUnavailable):
        await provider.logs(SESSION, 50, 8192)


async def test_logs_of_a_missing_pod_are_session_not_found(provider):
    with pytest.raises(SessionNotFound):
        await provider.logs(SESSION, 50, 8192)


async def test_logs_of_a_container_not_started_yet_are_empty(provider, core):
    await provider.ensure(NO_WORKSPACE)
    core.fail["read_namespaced_pod_log"] = api_exception(
        400, 'container "agent" in pod "x" is waiting to start: ContainerCreating')
    text = await provider.logs(NO_WORKSPACE, 50, 8192)
    assert (text, text.truncated) == ("", False)


async def test_logs_of_a_crash_looping_agent_come_from_the_previous_container(provider, core):
    await provider.ensure(NO_WORKSPACE)
    running(core, restarts=4, state={"waiting": {"reason": "CrashLoopBackOff"}})
    core.logs[POD] = b"Traceback: boom\n"
    assert await provider.logs(NO_WORKSPACE, 50, 8192) == "Traceback: boom\n"
    (_, _, kwargs), = [call for call in core.calls if call[0] == "read_namespaced_pod_log"]
    assert kwargs["previous"] is True


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(RawResponse(200, b'{"level": "info", "msg": "hi"}\n'), '{"level": "info", "msg": "hi"}\n',
                     id="json-log-stays-text"),
        pytest.param(RawResponse(200, "caf\u00e9\n".encode()[:-2] + b"\n"), "caf\ufffd\n",
                     id="invalid-utf8-is-replaced"),
    ],
)
async def test_logs_read_the_raw_body(provider, core, response, expected):
    await provider.ensure(NO_WORKSPACE)
    core.logs[POD] = response
    assert await provider.logs(NO_WORKSPACE, 50, 8192) == expected
    assert response.released


async def test_a_raw_error_response_is_mapped(provider, core):
    await provider.ensure(NO_WORKSPACE)
    core.logs[POD] = RawResponse(503, b'{"kind":"Status","message":"kubelet unreachable"}')
    with pytest.raises(ProviderUnavailable, match="kubelet unreachable"):
        await provider.logs(NO_WORKSPACE, 50, 8192)


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "create", "expected"),
    [
        pytest.param(404, False, SessionNotFound, id="404"),
        pytest.param(409, True, SessionAlreadyExists, id="409"),
        pytest.param(422, True, InvalidConfiguration, id="422-create"),
        pytest.param(403, True, InvalidConfiguration, id="403-create"),
        pytest.param(403, False, ProviderUnavailable, id="403-read"),
        pytest.param(500, False, ProviderUnavailable, id="500"),
        pytest.param(504, True, ProviderUnavailable, id="504-create"),
        pytest.param(0, False, ProviderUnavailable, id="no-http-status"),
        pytest.param(418, False, ProviderError, id="anything-else"),
    ],
)
def test_api_error_table(status, create, expected):
    error = api_error(api_exception(status, "msg"), action="do it", create=create)
    assert type(error) is expected
    assert str(error).startswith("do it: ")


def test_secret_references_of_a_pod():
    pod = {"spec": {
        "containers": [{"env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "a"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "b"}}},
            {"name": "C", "value": "plain"},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "a"}}},
        ], "envFrom": [{"secretRef": {"name": "bundle"}}, {"configMapRef": {"name": "cm"}}]}],
        "volumes": [{"name": "s", "secret": {"secretName": "files"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}]}}],
    }}
    assert secret_references(pod) == [
        SecretReference("creds", "a"), SecretReference("bundle"), SecretReference("files"), SecretReference("proj"),
    ]


def test_secret_values_decode_data_and_select_a_key():
    secret = {"data": {"a": encoded("alpha"), "b": encoded("beta")}, "stringData": {"c": "gamma"}}
    assert secret_values(secret) == ["alpha", "beta", "gamma"]
    assert secret_values(secret, "b") == ["beta"]


async def test_client_models_are_read_as_camel_case_json():
    from kubernetes_asyncio.client import ApiClient, V1ContainerStatus, V1ObjectMeta, V1Pod, V1PodCondition, V1PodStatus

    class ModelCore(FakeCoreV1Api):
        async def read_namespaced_pod(self, name, namespace, **kwargs):
            return V1Pod(
                metadata=V1ObjectMeta(name=name, namespace=namespace),
                status=V1PodStatus(
                    phase="Running", pod_ip="10.0.0.9",
                    conditions=[V1PodCondition(type="Ready", status="True")],
                    container_statuses=[V1ContainerStatus(name="agent", ready=True, restart_count=1, image="i",
                                                          image_id="", state={"running": {}})],
                ),
            )

    async with ApiClient() as client:
        provider = PodProvider(client, core_api=ModelCore())
        observation = await provider.observe(SESSION)
    assert (observation.state, observation.ready, observation.endpoint, observation.restarts) == (
        BackingState.RUNNING, True, "http://10.0.0.9:8080", 1)


async def test_a_pod_provider_built_from_an_api_client_uses_core_v1():
    from kubernetes_asyncio.client import ApiClient, CoreV1Api

    async with ApiClient() as client:
        provider = PodProvider(client)
        assert isinstance(provider._core, CoreV1Api)
        assert provider._core.api_client is client


# --- the pod security policy and the namespace's label ------------------------------------------

PRIVILEGE_ESCALATION = {**CONFIG, "podTemplate": {"containerSecurityContext": {"allowPrivilegeEscalation": True}}}
"""Allowed by baseline, forbidden by restricted."""


def labelled(core: FakeCoreV1Api, level: str) -> None:
    core.put("namespace", {"metadata": {"name": NS, "namespace": None,
                                        "labels": {"pod-security.kubernetes.io/enforce": level}}})


def baseline_provider(core: FakeCoreV1Api) -> PodProvider:
    from agent_sessions.providers.pod.policy import PodPolicy

    return watching(PodProvider(core_api=core, policy=PodPolicy("baseline")), core)


def test_validate_holds_the_config_to_the_operators_level(provider):
    assert provider.validate(PRIVILEGE_ESCALATION, ValidationContext(namespace=NS)) == [
        "spec.podTemplate.containerSecurityContext.allowPrivilegeEscalation: not allowed by the restricted pod"
        " security level (operator policy): must be false (a SessionTemplate's spec.policy.podSecurityLevel can"
        " raise the level for its sessions, up to baseline)"]


async def test_validate_uses_the_label_of_the_namespace_its_context_names(core):
    provider = baseline_provider(core)
    labelled(core, "restricted")
    assert provider.validate(PRIVILEGE_ESCALATION, ValidationContext(namespace=NS)) == []  # label not read yet

    await provider.prepare_namespace(NS)
    (problem,) = provider.validate(PRIVILEGE_ESCALATION, ValidationContext(namespace=NS))
    assert problem == (
        "spec.podTemplate.containerSecurityContext.allowPrivilegeEscalation: not allowed by the restricted pod"
        " security level (label pod-security.kubernetes.io/enforce=restricted of namespace team-a): must be false")
    # The context, not which task asks, decides: another namespace, or none, is not this label's.
    assert provider.validate(PRIVILEGE_ESCALATION, ValidationContext(namespace="elsewhere")) == []
    assert provider.validate(PRIVILEGE_ESCALATION, ValidationContext()) == []


async def test_ensure_refuses_a_config_the_namespaces_label_forbids_and_creates_nothing(core):
    provider = baseline_provider(core)
    labelled(core, "restricted")
    session = SessionRef(namespace=NS, name="demo", uid=UID, config=PRIVILEGE_ESCALATION)
    with pytest.raises(InvalidConfiguration, match="allowPrivilegeEscalation: not allowed by the restricted"):
        await provider.ensure(session)
    assert created(core) == []


async def test_ensure_refuses_a_policy_violation_before_any_request(provider, core):
    session = SessionRef(namespace=NS, name="demo", uid=UID, config=PRIVILEGE_ESCALATION)
    with pytest.raises(InvalidConfiguration, match="allowPrivilegeEscalation"):
        await provider.ensure(session)
    assert core.calls == []


@pytest.mark.parametrize("failure", [api_exception(403, "forbidden"), aiohttp.ClientConnectionError("refused")],
                         ids=["forbidden", "unreachable"])
async def test_an_unreadable_namespace_leaves_the_operators_level(core, failure, caplog):
    provider = baseline_provider(core)
    core.fail["read_namespace"] = failure
    session = SessionRef(namespace=NS, name="demo", uid=UID, config=PRIVILEGE_ESCALATION)
    await provider.ensure(session)
    assert ("create_namespaced_pod", POD) in created(core)
    assert "cannot read the labels of namespace team-a" in caplog.text


async def test_the_namespace_is_read_once_per_ttl():
    from agent_sessions.providers.pod.namespace_labels import NamespaceLabels

    now = [0.0]
    reads: list[str] = []

    async def read(namespace: str) -> dict:
        reads.append(namespace)
        return {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": f"v{len(reads)}"}}}

    labels = NamespaceLabels(read, ttl=30.0, clock=lambda: now[0])
    await asyncio.gather(*(labels.refresh(NS) for _ in range(5)))
    assert reads == [NS]
    now[0] = 29.0
    assert (await labels.refresh(NS)) == {"pod-security.kubernetes.io/enforce": "v1"}
    now[0] = 31.0
    assert (await labels.refresh(NS)) == {"pod-security.kubernetes.io/enforce": "v2"}
    assert labels.labels("elsewhere") is None
