"""Specifications for the strict local Kubernetes API (agent_sessions.dev.strict_api).

Each test states one rule of the real API server and proves it over real HTTP (aiohttp,
kubernetes_asyncio or kubectl), unless it is about the in-process harness API itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent_sessions.dev.object_store import ApiError
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api

TIER = "embedded"  # starts the embedded API and runs kubectl

ROOT = Path(__file__).resolve().parents[2]
AGENTSESSION_CRD = yaml.safe_load((ROOT / "crds" / "agentsessions.yaml").read_text())
AGS = "/apis/agentsession.dev/v1alpha1/namespaces/default/agentsessions"
PODS = "/api/v1/namespaces/default/pods"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
WIDGETS = "/apis/example.com/v1/widgets"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
# A cluster-scoped CRD without a status subresource, with a CEL rule and a selectable field.
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Cluster",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "shortNames": ["wd"], "categories": ["toys"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "selectableFields": [{"jsonPath": ".spec.color"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "color": {"type": "string"}, "size": {"type": "integer"},
                    "min": {"type": "integer"}, "max": {"type": "integer"}},
                    "x-kubernetes-validations": [
                        {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                         "message": "min must not exceed max"}]},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
        }],
    },
}
DEADLINE = 5.0


# --- fixtures and helpers -------------------------------------------------------------


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every test must leave the event loop as it found it (servers and streams closed)."""
    before = asyncio.all_tasks()
    yield
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        leaked = asyncio.all_tasks() - before - {asyncio.current_task()}
        if not leaked or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0)  # let finished tasks be collected; bounded by the deadline
    assert not leaked


@pytest.fixture
async def api() -> AsyncIterator[StrictKubernetesAPI]:
    async with StrictKubernetesAPI(crds=[AGENTSESSION_CRD, WIDGET_CRD],
                                   history_size=50, bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
async def http(api: StrictKubernetesAPI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url) as session:
        yield session


class Reply:
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        self.status, self.body, self.headers = status, body, headers

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None, *,
               content_type: str = "application/json", params: dict | None = None,
               headers: dict | None = None) -> Reply:
    data = None if body is None else json.dumps(body)
    sent = {"Content-Type": content_type, **(headers or {})}
    async with http.request(method, path, data=data, headers=sent, params=params) as response:
        text = await response.text()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return Reply(response.status, parsed, response.headers)


def session(name: str = "s1", **spec: Any) -> dict:
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession",
            "metadata": {"name": name}, "spec": {"agent": {"image": "agent:1"}, **spec}}


def configmap(name: str, labels: dict | None = None, **extra: Any) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}, **extra}, "data": {"k": "v"}}


def pod(name: str, phase: str | None = None, node: str | None = None, **meta: Any) -> dict:
    spec: dict = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta}, "spec": spec}


def owner_ref(owner: dict, block: bool = False) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": block}


class Watch:
    """A watch stream read line by line, each read bounded by a deadline."""

    def __init__(self, http: aiohttp.ClientSession, path: str, headers: dict | None = None, **params: str) -> None:
        self.http, self.path, self.params = http, path, {"watch": "true", **params}
        self.headers = headers or {}
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> Watch:
        self.response = await self.http.get(self.path, params=self.params, headers=self.headers)
        assert self.response.status == 200, await self.response.text()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.response is not None
        self.response.close()

    async def next(self) -> dict:
        assert self.response is not None
        line = await asyncio.wait_for(self.response.content.readline(), DEADLINE)
        if not line:
            raise EOFError("the watch stream ended")
        return json.loads(line)

    async def events(self, count: int) -> list[tuple[str, str]]:
        """The next ``count`` events as (type, name), bookmarks skipped."""
        seen = []
        while len(seen) < count:
            event = await self.next()
            if event["type"] != "BOOKMARK":
                seen.append((event["type"], event["object"]["metadata"].get("name")))
        return seen

    async def until_closed(self) -> list[dict]:
        events = []
        with contextlib.suppress(EOFError):
            while True:
                events.append(await self.next())
        return events


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


# --- identity and optimistic concurrency -------------------------------------------------


async def test_created_object_gets_uid_creation_timestamp_and_resource_version(http):
    reply = await call(http, "POST", AGS, session())
    meta = reply["metadata"]
    assert reply.status == 201
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit()


async def test_every_write_bumps_the_global_resource_version(http):
    body = session()
    body["metadata"]["finalizers"] = ["x/y"]
    created = await call(http, "POST", AGS, body)
    versions = [rv(created.body)]
    other = await call(http, "POST", CONFIGMAPS, configmap("other"))
    versions.append(rv(other.body))
    steps = [
        ("PATCH", f"{AGS}/s1", {"metadata": {"labels": {"a": "b"}}}, MERGE),
        ("PATCH", f"{AGS}/s1/status", {"status": {"phase": "Running"}}, MERGE),
        ("PUT", f"{AGS}/s1", None, "application/json"),
        ("PATCH", f"{AGS}/s1", {"metadata": {"finalizers": ["x/y", "x/z"]}}, MERGE),
        ("DELETE", f"{AGS}/s1", None, "application/json"),  # sets deletionTimestamp
    ]
    for method, path, body, content_type in steps:
        if method == "PUT":
            body = (await call(http, "GET", f"{AGS}/s1")).body
            body["spec"]["title"] = "replaced"
        reply = await call(http, method, path, body, content_type=content_type)
        assert reply.status == 200, reply.body
        versions.append(rv(reply.body))
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert (await call(http, "GET", f"{AGS}/s1"))["metadata"]["deletionTimestamp"]


async def test_write_that_changes_nothing_keeps_the_resource_version(api, http):
    created = await call(http, "POST", CONFIGMAPS, configmap("same"))
    async with Watch(http, CONFIGMAPS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        same = await call(http, "PATCH", f"{CONFIGMAPS}/same", {"data": {"k": "v"}}, content_type=MERGE)
        changed = await call(http, "PATCH", f"{CONFIGMAPS}/same", {"data": {"k": "w"}},
                             content_type=MERGE)
        assert await watch.events(1) == [("MODIFIED", "same")]
    assert rv(same.body) == rv(created.body) < rv(changed.body)


async def test_stale_resource_version_is_rejected_with_409(http):
    created = await call(http, "POST", AGS, session())
    stale = created["metadata"]["resourceVersion"]
    await call(http, "PATCH", f"{AGS}/s1", {"spec": {"title": "newer"}}, content_type=MERGE)
    replaced = dict(created.body, spec={"agent": {"image": "agent:2"}})
    put = await call(http, "PUT", f"{AGS}/s1", replaced)
    patch = await call(http, "PATCH", f"{AGS}/s1",
                       {"metadata": {"resourceVersion": stale}, "spec": {"title": "lost"}},
                       content_type=MERGE)
    for reply in (put, patch):
        assert reply.status == 409
        assert reply["kind"] == "Status" and reply["reason"] == "Conflict"
        assert "the object has been modified" in reply["message"]
    assert (await call(http, "GET", f"{AGS}/s1"))["spec"]["title"] == "newer"


async def test_write_carrying_another_uid_is_rejected_with_409(http):
    created = await call(http, "POST", CONFIGMAPS, configmap("u"))
    created.body["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
    reply = await call(http, "PUT", f"{CONFIGMAPS}/u", created.body)
    assert reply.status == 409 and "Precondition failed: UID" in reply["message"]


async def test_kopf_finalizer_json_patch_guarded_by_resource_version_succeeds(http):
    created = await call(http, "POST", AGS, session())
    ops = [{"op": "test", "path": "/metadata/resourceVersion",
            "value": created["metadata"]["resourceVersion"]},
           {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]}]
    reply = await call(http, "PATCH", f"{AGS}/s1", ops, content_type=JSON_PATCH)
    assert reply.status == 200
    assert reply["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]


async def test_failed_json_patch_test_op_is_422(http):
    await call(http, "POST", AGS, session())
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
           {"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]}]
    reply = await call(http, "PATCH", f"{AGS}/s1", ops, content_type=JSON_PATCH)
    assert reply.status == 422 and reply["kind"] == "Status"
    assert "finalizers" not in (await call(http, "GET", f"{AGS}/s1"))["metadata"]


# --- generation and the status subresource ------------------------------------------------


async def test_generation_starts_at_1_and_moves_only_with_spec(http):
    created = await call(http, "POST", AGS, session())
    labelled = await call(http, "PATCH", f"{AGS}/s1", {"metadata": {"labels": {"a": "b"}}},
                          content_type=MERGE)
    status = await call(http, "PATCH", f"{AGS}/s1/status", {"status": {"phase": "Running"}},
                        content_type=MERGE)
    spec = await call(http, "PATCH", f"{AGS}/s1", {"spec": {"title": "t"}}, content_type=MERGE)
    generations = [r["metadata"]["generation"] for r in (created, labelled, status, spec)]
    assert generations == [1, 1, 1, 2]


async def test_status_subresource_writes_change_only_status(http):
    await call(http, "POST", AGS, session())
    reply = await call(http, "PATCH", f"{AGS}/s1/status",
                       {"status": {"phase": "Running"}, "spec": {"title": "sneaky"},
                        "metadata": {"labels": {"sneaky": "yes"}}}, content_type=MERGE)
    assert reply.status == 200
    assert reply["status"] == {"phase": "Running"}
    assert "title" not in reply["spec"] and "labels" not in reply["metadata"]


async def test_main_resource_writes_ignore_status_changes(http):
    created = await call(http, "POST", AGS, dict(session(), status={"phase": "Failed"}))
    assert "status" not in created.body  # create cannot set status either
    await call(http, "PATCH", f"{AGS}/s1/status", {"status": {"phase": "Running"}}, content_type=MERGE)
    reply = await call(http, "PATCH", f"{AGS}/s1",
                       {"status": {"phase": "Failed"}, "spec": {"title": "t"}}, content_type=MERGE)
    assert reply["status"] == {"phase": "Running"} and reply["spec"]["title"] == "t"


async def test_status_is_an_ordinary_field_without_a_status_subresource(http):
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"color": "red"}, "status": {"ok": True}}
    created = await call(http, "POST", WIDGETS, widget)
    patched = await call(http, "PATCH", f"{WIDGETS}/w", {"status": {"ok": False}}, content_type=MERGE)
    no_subresource = await call(http, "PATCH", f"{WIDGETS}/w/status", {"status": {}}, content_type=MERGE)
    assert created["status"] == {"ok": True} and patched["status"] == {"ok": False}
    assert patched["metadata"]["generation"] == 2  # without the subresource, status is content
    assert no_subresource.status == 404


async def test_put_replaces_the_object_and_the_status(http):
    created = await call(http, "POST", AGS, session(title="old"))
    body = dict(created.body, spec={"agent": {"image": "agent:2"}})
    replaced = await call(http, "PUT", f"{AGS}/s1", body)
    body = dict(replaced.body, status={"phase": "Stopped"})
    status = await call(http, "PUT", f"{AGS}/s1/status", body)
    assert replaced.status == 200 and replaced["spec"] == {"agent": {"image": "agent:2"}}
    assert status.status == 200 and status["status"] == {"phase": "Stopped"}
    assert status["metadata"]["generation"] == 2


async def test_put_of_a_custom_resource_needs_a_resource_version(http):
    created = await call(http, "POST", AGS, session())
    del created.body["metadata"]["resourceVersion"]
    reply = await call(http, "PUT", f"{AGS}/s1", created.body)
    assert reply.status == 422 and "must be specified for an update" in reply["message"]


# --- status codes and Status bodies --------------------------------------------------------


async def test_create_is_201_and_a_duplicate_name_is_409_already_exists(http):
    first = await call(http, "POST", AGS, session())
    second = await call(http, "POST", AGS, session())
    assert first.status == 201
    assert second.status == 409 and second["reason"] == "AlreadyExists"
    assert second["details"] == {"name": "s1", "group": "agentsession.dev", "kind": "agentsessions"}


async def test_missing_object_is_404_with_a_status_body(http):
    reply = await call(http, "GET", f"{PODS}/nope")
    assert reply.status == 404
    assert reply.body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "nope" not found', "reason": "NotFound", "code": 404,
        "details": {"name": "nope", "kind": "pods"}}


async def test_object_without_a_name_is_422_invalid(http):
    reply = await call(http, "POST", CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {}})
    assert reply.status == 422 and reply["reason"] == "Invalid"
    assert reply["details"]["causes"] == [{"reason": "FieldValueRequired", "field": "metadata.name",
                                           "message": "Required value: name or generateName is required"}]


async def test_custom_resource_failing_its_schema_is_422_with_causes(http):
    reply = await call(http, "POST", AGS, session(provider="docker"))
    assert reply.status == 422
    # Word for word what kube-apiserver 1.36 answers (tests/deploy/test_install_real.py checks the corpus there).
    skipped = ("Invalid value: null: some validation rules were not checked because the object was invalid; "
               "correct the existing errors to complete validation")
    assert reply["message"] == ('AgentSession.agentsession.dev "s1" is invalid: [spec.provider: '
                                'Unsupported value: "docker": supported values: "pod", "http", "tmux", '
                                f'<nil>: {skipped}]')
    assert reply["details"]["kind"] == "AgentSession"
    assert reply["details"]["causes"] == [
        {"reason": "FieldValueNotSupported", "field": "spec.provider",
         "message": 'Unsupported value: "docker": supported values: "pod", "http", "tmux"'},
        {"reason": "FieldValueInvalid", "field": "<nil>", "message": skipped},
    ]


async def test_custom_resource_failing_a_cel_rule_is_422(http):
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"min": 5, "max": 1}}
    reply = await call(http, "POST", WIDGETS, widget)
    assert reply.status == 422
    assert reply["message"] == 'Widget.example.com "w" is invalid: spec: Invalid value: min must not exceed max'


async def test_update_is_validated_like_a_create(http):
    await call(http, "POST", AGS, session())
    reply = await call(http, "PATCH", f"{AGS}/s1", {"spec": {"state": "Paused"}}, content_type=MERGE)
    assert reply.status == 422 and reply["details"]["causes"][0]["field"] == "spec.state"


async def test_unknown_fields_are_pruned_with_a_warning_by_default(http):
    reply = await call(http, "POST", AGS, session(colour="blue"))
    assert reply.status == 201 and "colour" not in reply["spec"]
    assert reply.headers.getall("Warning") == ['299 - "unknown field \\"spec.colour\\""']


async def test_unknown_fields_are_refused_with_strict_field_validation(http):
    reply = await call(http, "POST", AGS, session(colour="blue"), params={"fieldValidation": "Strict"})
    assert reply.status == 400 and reply["reason"] == "BadRequest"
    assert reply["message"].endswith('strict decoding error: unknown field "spec.colour"')
    ignored = await call(http, "POST", AGS, session("s2", colour="blue"),
                         params={"fieldValidation": "Ignore"})
    assert ignored.status == 201 and "Warning" not in ignored.headers


async def test_dry_run_validates_without_storing(http):
    reply = await call(http, "POST", AGS, session(), params={"dryRun": "All"})
    assert reply.status == 201
    assert (await call(http, "GET", f"{AGS}/s1")).status == 404


# --- patches ------------------------------------------------------------------------------


async def test_merge_patch_null_deletes_a_key(http):
    await call(http, "POST", CONFIGMAPS, configmap("m", labels={"a": "1", "b": "2"}))
    reply = await call(http, "PATCH", f"{CONFIGMAPS}/m", {"metadata": {"labels": {"a": None}}},
                       content_type=MERGE)
    assert reply["metadata"]["labels"] == {"b": "2"}


async def test_json_patch_applies_rfc6902_operations(http):
    await call(http, "POST", CONFIGMAPS, configmap("j", labels={"a": "1"}))
    ops = [{"op": "add", "path": "/data/new", "value": "x"},
           {"op": "replace", "path": "/data/k", "value": "w"},
           {"op": "copy", "from": "/data/k", "path": "/data/copied"},
           {"op": "move", "from": "/data/new", "path": "/data/moved"},
           {"op": "remove", "path": "/metadata/labels/a"},
           {"op": "test", "path": "/data/k", "value": "w"}]
    reply = await call(http, "PATCH", f"{CONFIGMAPS}/j", ops, content_type=JSON_PATCH)
    assert reply.status == 200
    assert reply["data"] == {"k": "w", "copied": "w", "moved": "x"}
    assert reply["metadata"]["labels"] == {}


async def test_json_patch_that_is_not_a_list_is_400(http):
    await call(http, "POST", CONFIGMAPS, configmap("j"))
    reply = await call(http, "PATCH", f"{CONFIGMAPS}/j", {"data": {}}, content_type=JSON_PATCH)
    assert reply.status == 400


async def test_strategic_merge_patch_merges_containers_by_name(http):
    body = pod("p")
    body["spec"]["containers"].append({"name": "side", "image": "side:1"})
    await call(http, "POST", PODS, body)
    patch = {"spec": {"containers": [{"name": "side", "image": "side:2"}]},
             "metadata": {"finalizers": ["a/b"]}}
    reply = await call(http, "PATCH", f"{PODS}/p", patch, content_type=STRATEGIC)
    assert reply["spec"]["containers"] == [{"name": "main", "image": "busybox"},
                                           {"name": "side", "image": "side:2"}]


async def test_strategic_merge_and_apply_patches_of_custom_resources_are_415(http):
    await call(http, "POST", AGS, session())
    strategic = await call(http, "PATCH", f"{AGS}/s1", {"spec": {}}, content_type=STRATEGIC)
    apply = await call(http, "PATCH", f"{AGS}/s1", {"spec": {}},
                       content_type="application/apply-patch+yaml")
    assert strategic.status == 415 and apply.status == 415


async def test_a_body_in_a_format_other_than_json_or_yaml_is_415_naming_those(http):
    # As the API server answers a custom resource sent as CBOR (tests/dev/test_backends_agree.py);
    # this server decodes protobuf for no resource either.
    for path, body in ((AGS, session()), (CONFIGMAPS, configmap("c"))):
        for kind in ("application/vnd.kubernetes.protobuf", "application/cbor", "text/plain"):
            reply = await call(http, "POST", path, body, content_type=kind)
            assert reply.status == 415, (path, kind)
            assert reply["reason"] == "UnsupportedMediaType" and "application/json, application/yaml" in reply["message"]
    assert (await call(http, "POST", AGS, session(), content_type="application/json")).status == 201


async def test_generate_name_gets_a_random_five_character_suffix(http):
    body = configmap("")
    body["metadata"] = {"generateName": "job-"}
    names = {(await call(http, "POST", CONFIGMAPS, body))["metadata"]["name"] for _ in range(5)}
    assert len(names) == 5
    assert all(re.fullmatch(r"job-[bcdfghjklmnpqrstvwxz2456789]{5}", name) for name in names)


# --- selectors ------------------------------------------------------------------------------


async def test_label_selectors_filter_lists(http):
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}),
                         ("c", {"app": "z", "tier": "db"}), ("d", {})):
        await call(http, "POST", CONFIGMAPS, configmap(name, labels))

    async def names(selector: str) -> list[str]:
        reply = await call(http, "GET", CONFIGMAPS, params={"labelSelector": selector})
        return [item["metadata"]["name"] for item in reply["items"]]

    assert await names("app=x") == ["a"]
    assert await names("app==x") == ["a"]
    assert await names("app!=x") == ["b", "c", "d"]
    assert await names("app in (x,y)") == ["a", "b"]
    assert await names("app notin (x)") == ["b", "c", "d"]
    assert await names("tier") == ["a", "c"]
    assert await names("!tier") == ["b", "d"]
    assert await names("app in (x,z),tier=db") == ["c"]
    assert (await call(http, "GET", CONFIGMAPS, params={"labelSelector": "app in x"})).status == 400


async def test_field_selectors_filter_lists(api, http):
    await call(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await call(http, "POST", PODS, pod("p1", node="n1"))
    await call(http, "POST", PODS, pod("p2"))
    await call(http, "POST", "/api/v1/namespaces/other/pods", pod("p3", node="n1"))
    api.patch_status("pods", "default", "p2", {"phase": "Running"})

    async def names(selector: str, path: str = "/api/v1/pods") -> list[str]:
        reply = await call(http, "GET", path, params={"fieldSelector": selector})
        assert reply.status == 200, reply.body
        return [item["metadata"]["name"] for item in reply["items"]]

    assert await names("metadata.name=p1") == ["p1"]
    assert await names("metadata.namespace=other") == ["p3"]
    assert await names("metadata.namespace!=other") == ["p1", "p2"]
    assert await names("status.phase=Running") == ["p2"]
    assert await names("status.phase!=Running,spec.nodeName=n1") == ["p1", "p3"]
    assert await names("spec.nodeName=") == ["p2"]
    assert await names("spec.color=red", "/apis/example.com/v1/widgets") == []  # selectableFields
    unsupported = await call(http, "GET", CONFIGMAPS, params={"fieldSelector": "data.k=v"})
    assert unsupported.status == 400 and unsupported["message"] == "field label not supported: data.k"


async def test_label_selector_filters_a_watch_and_leaving_it_reads_as_deleted(http):
    async with Watch(http, CONFIGMAPS, labelSelector="app=x") as watch:
        await call(http, "POST", CONFIGMAPS, configmap("in", {"app": "x"}))
        await call(http, "POST", CONFIGMAPS, configmap("out", {"app": "y"}))
        await call(http, "PATCH", f"{CONFIGMAPS}/out", {"metadata": {"labels": {"app": "x"}}},
                   content_type=MERGE)
        await call(http, "PATCH", f"{CONFIGMAPS}/in", {"metadata": {"labels": {"app": "y"}}},
                   content_type=MERGE)
        assert await watch.events(3) == [("ADDED", "in"), ("ADDED", "out"), ("DELETED", "in")]


async def test_field_selector_filters_a_watch(api, http):
    async with Watch(http, PODS, fieldSelector="spec.nodeName=n1") as watch:
        await call(http, "POST", PODS, pod("elsewhere", node="n2"))
        await call(http, "POST", PODS, pod("here", node="n1"))
        assert await watch.events(1) == [("ADDED", "here")]
    unsupported = await call(http, "GET", PODS, params={"watch": "true", "fieldSelector": "x=y"})
    assert unsupported.status == 400


# --- watches --------------------------------------------------------------------------------


async def test_list_then_watch_from_the_list_resource_version_misses_nothing(http):
    await call(http, "POST", CONFIGMAPS, configmap("before"))
    listed = await call(http, "GET", CONFIGMAPS)
    await call(http, "POST", CONFIGMAPS, configmap("between"))
    async with Watch(http, CONFIGMAPS, resourceVersion=listed["metadata"]["resourceVersion"]) as watch:
        await call(http, "POST", CONFIGMAPS, configmap("after"))
        assert await watch.events(2) == [("ADDED", "between"), ("ADDED", "after")]
    assert listed["kind"] == "ConfigMapList" and listed["apiVersion"] == "v1"


async def test_watch_from_a_resource_version_replays_later_events(http):
    created = await call(http, "POST", CONFIGMAPS, configmap("r"))
    await call(http, "PATCH", f"{CONFIGMAPS}/r", {"data": {"k": "2"}}, content_type=MERGE)
    await call(http, "DELETE", f"{CONFIGMAPS}/r")
    async with Watch(http, CONFIGMAPS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        assert await watch.events(2) == [("MODIFIED", "r"), ("DELETED", "r")]


async def test_watch_without_resource_version_starts_with_synthetic_added(http):
    await call(http, "POST", CONFIGMAPS, configmap("existing"))
    async with Watch(http, CONFIGMAPS) as watch:
        assert await watch.events(1) == [("ADDED", "existing")]
        await call(http, "POST", CONFIGMAPS, configmap("live"))
        assert await watch.events(1) == [("ADDED", "live")]


async def test_watch_older_than_the_history_gets_an_expired_error_event(http):
    first = await call(http, "POST", CONFIGMAPS, configmap("old"))
    for value in range(60):  # the fixture keeps a history of 50 events
        await call(http, "PATCH", f"{CONFIGMAPS}/old", {"data": {"k": str(value)}}, content_type=MERGE)
    async with Watch(http, CONFIGMAPS, resourceVersion=first["metadata"]["resourceVersion"]) as watch:
        event = await watch.next()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith("too old resource version")


async def test_watch_ends_after_timeout_seconds(http):
    async with Watch(http, CONFIGMAPS, timeoutSeconds="1") as watch:
        events = await watch.until_closed()
    assert events == []


async def test_watch_sends_bookmarks_when_allowed(http):
    listed = await call(http, "GET", CONFIGMAPS)
    async with Watch(http, CONFIGMAPS, allowWatchBookmarks="true",
                     resourceVersion=listed["metadata"]["resourceVersion"]) as watch:
        event = await watch.next()
    assert event == {"type": "BOOKMARK", "object": {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]}}}


async def test_initial_events_end_with_an_annotated_bookmark(http):
    await call(http, "POST", CONFIGMAPS, configmap("a"))
    async with Watch(http, CONFIGMAPS, sendInitialEvents="true", allowWatchBookmarks="true",
                     resourceVersionMatch="NotOlderThan") as watch:
        added, bookmark = await watch.next(), await watch.next()
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_of_one_named_object(http):
    await call(http, "POST", CONFIGMAPS, configmap("one"))
    await call(http, "POST", CONFIGMAPS, configmap("two"))
    async with Watch(http, f"{CONFIGMAPS}/two") as watch:
        assert await watch.events(1) == [("ADDED", "two")]


async def test_list_pages_with_limit_and_continue(http):
    for name in "abcde":
        await call(http, "POST", CONFIGMAPS, configmap(name))
    first = await call(http, "GET", CONFIGMAPS, params={"limit": "2"})
    second = await call(http, "GET", CONFIGMAPS, params={"limit": "2",
                                                         "continue": first["metadata"]["continue"]})
    last = await call(http, "GET", CONFIGMAPS, params={"limit": "2",
                                                       "continue": second["metadata"]["continue"]})
    pages = [[i["metadata"]["name"] for i in page["items"]] for page in (first, second, last)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert first["metadata"]["remainingItemCount"] == 3 and "continue" not in last["metadata"]
    assert first["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"]
    assert (await call(http, "GET", CONFIGMAPS, params={"limit": "many"})).status == 400


# --- deletion, finalizers, garbage collection ----------------------------------------------


async def test_delete_with_finalizers_waits_for_the_last_finalizer(http):
    body = configmap("f", finalizers=["a/one", "a/two"])
    created = await call(http, "POST", CONFIGMAPS, body)
    async with Watch(http, CONFIGMAPS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        deleting = await call(http, "DELETE", f"{CONFIGMAPS}/f")
        assert deleting.status == 200
        assert deleting["metadata"]["deletionTimestamp"]
        assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
        await call(http, "PATCH", f"{CONFIGMAPS}/f", {"metadata": {"finalizers": ["a/two"]}},
                   content_type=MERGE)
        assert (await call(http, "GET", f"{CONFIGMAPS}/f")).status == 200
        released = await call(http, "PATCH", f"{CONFIGMAPS}/f", {"metadata": {"finalizers": None}},
                              content_type=MERGE)
        assert released.status == 200
        assert await watch.events(4) == [("MODIFIED", "f"), ("MODIFIED", "f"), ("MODIFIED", "f"),
                                         ("DELETED", "f")]
    assert (await call(http, "GET", f"{CONFIGMAPS}/f")).status == 404


async def test_delete_without_finalizers_removes_the_object_at_once(http):
    created = await call(http, "POST", CONFIGMAPS, configmap("gone"))
    async with Watch(http, CONFIGMAPS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        reply = await call(http, "DELETE", f"{CONFIGMAPS}/gone")
        assert await watch.events(1) == [("DELETED", "gone")]
    assert reply.status == 200 and reply["metadata"]["name"] == "gone"
    assert (await call(http, "GET", f"{CONFIGMAPS}/gone")).status == 404
    assert (await call(http, "DELETE", f"{CONFIGMAPS}/gone")).status == 404


async def test_new_finalizers_on_an_object_being_deleted_are_rejected(http):
    await call(http, "POST", CONFIGMAPS, configmap("f", finalizers=["a/one"]))
    await call(http, "DELETE", f"{CONFIGMAPS}/f")
    reply = await call(http, "PATCH", f"{CONFIGMAPS}/f",
                       {"metadata": {"finalizers": ["a/one", "a/new"]}}, content_type=MERGE)
    assert reply.status == 422
    assert reply["details"]["causes"][0]["reason"] == "FieldValueForbidden"


async def test_background_deletion_collects_dependents(http):
    owner = (await call(http, "POST", AGS, session())).body
    await call(http, "POST", PODS, pod("child", ownerReferences=[owner_ref(owner)]))
    await call(http, "POST", CONFIGMAPS, configmap("grandchild", ownerReferences=[
        owner_ref((await call(http, "GET", f"{PODS}/child")).body)]))
    reply = await call(http, "DELETE", f"{AGS}/s1")
    assert reply.status == 200
    assert (await call(http, "GET", f"{PODS}/child")).status == 404
    assert (await call(http, "GET", f"{CONFIGMAPS}/grandchild")).status == 404


async def test_dependent_with_another_live_owner_survives_without_the_dead_reference(http):
    first = (await call(http, "POST", CONFIGMAPS, configmap("owner1"))).body
    second = (await call(http, "POST", CONFIGMAPS, configmap("owner2"))).body
    await call(http, "POST", PODS, pod("shared", ownerReferences=[owner_ref(first), owner_ref(second)]))
    await call(http, "DELETE", f"{CONFIGMAPS}/owner1")
    survivor = await call(http, "GET", f"{PODS}/shared")
    assert [ref["name"] for ref in survivor["metadata"]["ownerReferences"]] == ["owner2"]


async def test_foreground_deletion_deletes_blocking_dependents_before_the_owner(http):
    owner = (await call(http, "POST", AGS, session())).body
    child = pod("child", ownerReferences=[owner_ref(owner, block=True)], finalizers=["kubelet/x"])
    await call(http, "POST", PODS, child)
    reply = await call(http, "DELETE", f"{AGS}/s1", params={"propagationPolicy": "Foreground"})
    assert reply["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert reply["metadata"]["deletionTimestamp"]
    assert (await call(http, "GET", f"{PODS}/child"))["metadata"]["deletionTimestamp"]
    assert (await call(http, "GET", f"{AGS}/s1")).status == 200  # blocked by the child
    await call(http, "PATCH", f"{PODS}/child", {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert (await call(http, "GET", f"{PODS}/child")).status == 404
    assert (await call(http, "GET", f"{AGS}/s1")).status == 404


async def test_orphan_deletion_removes_owner_references_from_dependents(http):
    owner = (await call(http, "POST", AGS, session())).body
    await call(http, "POST", PODS, pod("child", ownerReferences=[owner_ref(owner)]))
    reply = await call(http, "DELETE", f"{AGS}/s1", params={"propagationPolicy": "Orphan"})
    orphan = await call(http, "GET", f"{PODS}/child")
    assert reply.status == 200 and (await call(http, "GET", f"{AGS}/s1")).status == 404
    assert orphan.status == 200 and "ownerReferences" not in orphan["metadata"]


async def test_delete_options_may_come_as_the_json_body(http):
    owner = (await call(http, "POST", AGS, session())).body
    await call(http, "POST", PODS, pod("child", ownerReferences=[owner_ref(owner)]))
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
    await call(http, "DELETE", f"{AGS}/s1", options)
    assert (await call(http, "GET", f"{PODS}/child")).status == 200
    stale = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "other"}}
    assert (await call(http, "DELETE", f"{PODS}/child", stale)).status == 409


# --- graceful deletion of pods ----------------------------------------------------------------


def running_pod(name: str, grace: int | None = None, **meta: Any) -> dict:
    """A pod bound to a node (as after the scheduler's binding), optionally with a grace period."""
    body = pod(name, node="embedded-node", **meta)
    if grace is not None:
        body["spec"]["terminationGracePeriodSeconds"] = grace
    return body


async def test_deleting_a_bound_pod_keeps_it_terminating_with_its_grace_period(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    reply = await call(http, "DELETE", f"{PODS}/p")
    kept = await call(http, "GET", f"{PODS}/p")
    assert reply.status == 200 and reply["kind"] == "Pod"
    assert reply["metadata"]["deletionTimestamp"] and reply["metadata"]["deletionGracePeriodSeconds"] == 20
    assert kept.status == 200 and kept["metadata"] == reply["metadata"]


async def test_grace_period_comes_from_delete_options_else_30_by_default(http):
    await call(http, "POST", PODS, running_pod("by-option", grace=20))
    await call(http, "POST", PODS, running_pod("by-default"))
    by_option = await call(http, "DELETE", f"{PODS}/by-option", params={"gracePeriodSeconds": "7"})
    by_default = await call(http, "DELETE", f"{PODS}/by-default")
    assert by_option["metadata"]["deletionGracePeriodSeconds"] == 7
    assert by_default["metadata"]["deletionGracePeriodSeconds"] == 30


async def test_deletion_timestamp_of_a_graceful_delete_is_when_the_grace_period_ends(http):
    await call(http, "POST", PODS, running_pod("p", grace=3600))
    reply = await call(http, "DELETE", f"{PODS}/p")

    def when(field: str) -> datetime.datetime:
        return datetime.datetime.strptime(reply["metadata"][field], "%Y-%m-%dT%H:%M:%SZ")

    assert 3598 <= (when("deletionTimestamp") - when("creationTimestamp")).total_seconds() <= 3602


async def test_a_second_delete_does_not_extend_a_graceful_deletion(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    first = await call(http, "DELETE", f"{PODS}/p")
    again = await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 60})
    plain = await call(http, "DELETE", f"{PODS}/p")
    assert again.status == plain.status == 200
    assert again["metadata"] == plain["metadata"] == first["metadata"]  # not even a new resourceVersion


async def test_a_second_delete_may_shorten_the_grace_period(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    await call(http, "DELETE", f"{PODS}/p")
    shorter = await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 5})
    assert shorter.status == 200 and shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    assert (await call(http, "GET", f"{PODS}/p"))["metadata"]["deletionGracePeriodSeconds"] == 5


async def test_a_delete_with_grace_0_removes_a_terminating_pod_at_once(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    await call(http, "DELETE", f"{PODS}/p")
    final = await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 0})
    assert final.status == 200 and final["metadata"]["deletionGracePeriodSeconds"] == 0
    assert (await call(http, "GET", f"{PODS}/p")).status == 404


async def test_a_delete_with_grace_0_removes_a_running_pod_at_once(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    reply = await call(http, "DELETE", f"{PODS}/p", params={"gracePeriodSeconds": "0"})
    assert reply.status == 200
    assert (await call(http, "GET", f"{PODS}/p")).status == 404


async def test_unbound_and_terminated_pods_are_deleted_at_once(api, http):
    await call(http, "POST", PODS, pod("unbound"))
    for name, phase in (("succeeded", "Succeeded"), ("failed", "Failed")):
        await call(http, "POST", PODS, running_pod(name, grace=20))
        api.patch_status("pods", "default", name, {"phase": phase})
    for name in ("unbound", "succeeded", "failed"):
        reply = await call(http, "DELETE", f"{PODS}/{name}")
        assert reply.status == 200 and reply["metadata"]["deletionGracePeriodSeconds"] == 0
        assert (await call(http, "GET", f"{PODS}/{name}")).status == 404


async def test_watch_sees_a_terminating_pod_modified_then_deleted(api, http):
    created = await call(http, "POST", PODS, running_pod("p", grace=20))
    async with Watch(http, PODS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        await call(http, "DELETE", f"{PODS}/p")
        terminating = await watch.next()
        await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 0,
                                                 "preconditions": {"uid": created["metadata"]["uid"]}})
        assert await watch.events(2) == [("MODIFIED", "p"), ("DELETED", "p")]
    assert terminating["type"] == "MODIFIED"
    assert terminating["object"]["metadata"]["deletionGracePeriodSeconds"] == 20


async def test_watch_sees_a_pod_deleted_at_once_modified_then_deleted(http):
    created = await call(http, "POST", PODS, pod("unbound"))
    async with Watch(http, PODS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        await call(http, "DELETE", f"{PODS}/unbound")
        events = [await watch.next(), await watch.next()]
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["deletionTimestamp"] for e in events)


async def test_a_pod_of_the_same_name_cannot_be_created_while_the_old_one_terminates(http):
    await call(http, "POST", PODS, running_pod("p", grace=20))
    await call(http, "DELETE", f"{PODS}/p")
    again = await call(http, "POST", PODS, running_pod("p"))
    assert again.status == 409 and again["reason"] == "AlreadyExists"


async def test_finalizers_hold_a_pod_after_its_grace_period(http):
    await call(http, "POST", PODS, running_pod("p", grace=20, finalizers=["a/b"]))
    await call(http, "DELETE", f"{PODS}/p")
    await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 0})
    held = await call(http, "GET", f"{PODS}/p")
    assert held.status == 200 and held["metadata"]["deletionGracePeriodSeconds"] == 0
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert (await call(http, "GET", f"{PODS}/p")).status == 404


async def test_removing_the_last_finalizer_during_the_grace_period_does_not_remove_the_pod(http):
    await call(http, "POST", PODS, running_pod("p", grace=20, finalizers=["a/b"]))
    await call(http, "DELETE", f"{PODS}/p")
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert (await call(http, "GET", f"{PODS}/p")).status == 200  # the kubelet has not finished
    await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 0})
    assert (await call(http, "GET", f"{PODS}/p")).status == 404


async def test_garbage_collection_deletes_bound_pods_gracefully(http):
    owner = (await call(http, "POST", AGS, session())).body
    await call(http, "POST", PODS, running_pod("child", grace=20, ownerReferences=[owner_ref(owner)]))
    await call(http, "DELETE", f"{AGS}/s1")
    child = await call(http, "GET", f"{PODS}/child")
    assert child.status == 200 and child["metadata"]["deletionGracePeriodSeconds"] == 20


async def test_a_namespace_terminates_only_once_its_pods_are_gone(http):
    await call(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    pods = "/api/v1/namespaces/doomed/pods"
    await call(http, "POST", pods, running_pod("p", grace=20))
    await call(http, "DELETE", "/api/v1/namespaces/doomed")
    assert (await call(http, "GET", f"{pods}/p"))["metadata"]["deletionGracePeriodSeconds"] == 20
    assert (await call(http, "GET", "/api/v1/namespaces/doomed")).status == 200
    await call(http, "DELETE", f"{pods}/p", {"gracePeriodSeconds": 0})
    assert (await call(http, "GET", "/api/v1/namespaces/doomed")).status == 404


async def test_a_uid_precondition_never_deletes_a_new_pod_of_the_same_name(http):
    old = (await call(http, "POST", PODS, pod("p"))).body
    await call(http, "DELETE", f"{PODS}/p")
    await call(http, "POST", PODS, running_pod("p"))
    stale = await call(http, "DELETE", f"{PODS}/p", {"gracePeriodSeconds": 0,
                                                     "preconditions": {"uid": old["metadata"]["uid"]}})
    assert stale.status == 409
    assert (await call(http, "GET", f"{PODS}/p")).status == 200


async def test_binding_a_pod_sets_its_node_and_the_pod_scheduled_condition(http):
    created = (await call(http, "POST", PODS, pod("p"))).body
    binding = {"apiVersion": "v1", "kind": "Binding",
               "metadata": {"name": "p", "uid": created["metadata"]["uid"]},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "embedded-node"}}
    reply = await call(http, "POST", f"{PODS}/p/binding", binding)
    bound = await call(http, "GET", f"{PODS}/p")
    assert reply.status == 201 and reply["kind"] == "Status" and reply["status"] == "Success"
    assert bound["spec"]["nodeName"] == "embedded-node"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][-1].items()


async def test_binding_a_bound_pod_is_409_and_a_mismatched_name_400(http):
    await call(http, "POST", PODS, running_pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"kind": "Node", "name": "other"}}
    again = await call(http, "POST", f"{PODS}/p/binding", binding)
    wrong = await call(http, "POST", f"{PODS}/p/binding", {**binding, "metadata": {"name": "q"}})
    no_node = await call(http, "POST", f"{PODS}/p/binding", {**binding, "target": {}})
    assert (again.status, wrong.status, no_node.status) == (409, 400, 422)
    assert 'already assigned to node "embedded-node"' in again["message"]


# --- namespaces -----------------------------------------------------------------------------


async def test_default_namespace_exists_and_namespaces_are_listable(http):
    reply = await call(http, "GET", "/api/v1/namespaces")
    names = [item["metadata"]["name"] for item in reply["items"]]
    assert "default" in names and reply["kind"] == "NamespaceList"
    assert reply["items"][names.index("default")]["status"] == {"phase": "Active"}


async def test_creating_in_a_missing_namespace_is_404(http):
    reply = await call(http, "POST", "/api/v1/namespaces/nowhere/configmaps", configmap("c"))
    assert reply.status == 404 and reply["message"] == 'namespaces "nowhere" not found'


async def test_deleting_a_namespace_deletes_its_contents(http):
    await call(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    await call(http, "POST", "/api/v1/namespaces/doomed/configmaps",
               configmap("held", finalizers=["a/b"]))
    terminating = await call(http, "DELETE", "/api/v1/namespaces/doomed")
    assert terminating["status"] == {"phase": "Terminating"}
    refused = await call(http, "POST", "/api/v1/namespaces/doomed/configmaps", configmap("new"))
    assert refused.status == 403
    await call(http, "PATCH", "/api/v1/namespaces/doomed/configmaps/held",
               {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert (await call(http, "GET", "/api/v1/namespaces/doomed")).status == 404


# --- discovery ------------------------------------------------------------------------------


async def test_core_discovery_reports_group_version_v1_with_subresources(http):
    api_versions = await call(http, "GET", "/api")
    core = await call(http, "GET", "/api/v1")
    assert api_versions["versions"] == ["v1"]
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    for name in ("pods", "pods/status", "pods/log", "events", "secrets", "configmaps",
                 "persistentvolumeclaims", "serviceaccounts", "namespaces", "services"):
        assert name in by_name, name
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert by_name["namespaces"]["namespaced"] is False and by_name["pods"]["kind"] == "Pod"
    assert "watch" in by_name["pods"]["verbs"]


async def test_group_discovery_lists_builtin_groups_and_registered_crds(http):
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    reply = await call(http, "GET", "/apis", headers={"Accept": aggregated})
    groups = {g["name"]: g for g in reply["groups"]}
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply["kind"] == "APIGroupList"
    assert {"apiextensions.k8s.io", "events.k8s.io", "coordination.k8s.io",
            "agentsession.dev", "example.com"} <= set(groups)
    assert groups["agentsession.dev"]["preferredVersion"]["groupVersion"] == "agentsession.dev/v1alpha1"
    resources = await call(http, "GET", "/apis/agentsession.dev/v1alpha1")
    entries = {r["name"]: r for r in resources["resources"]}
    assert entries["agentsessions"]["shortNames"] == ["ags"]
    assert entries["agentsessions"]["categories"] == ["agents"]
    assert "agentsessions/status" in entries
    assert (await call(http, "GET", "/apis/coordination.k8s.io/v1"))["resources"][0]["name"] == "leases"


async def test_version_reports_a_kubernetes_git_version(http):
    reply = await call(http, "GET", "/version")
    assert reply["gitVersion"] == "v1.31.0" and reply["major"] == "1" and reply["minor"] == "31"


async def test_creating_a_crd_serves_its_resource(http):
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "gadgets.toys.example.com"
    crd["spec"].update(group="toys.example.com", scope="Namespaced",
                       names={"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"]})
    crd["spec"]["versions"][0]["subresources"] = {"status": {}}
    created = await call(http, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert created.status == 201
    established = await call(http, "GET",
                             "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.toys.example.com")
    conditions = {c["type"]: c["status"] for c in established["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    resources = await call(http, "GET", "/apis/toys.example.com/v1")
    assert {r["name"] for r in resources["resources"]} == {"gadgets", "gadgets/status"}
    path = "/apis/toys.example.com/v1/namespaces/default/gadgets"
    gadget = {"apiVersion": "toys.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
              "spec": {"min": 3, "max": 1}}
    assert (await call(http, "POST", path, gadget)).status == 422  # its schema is enforced
    gadget["spec"] = {"size": 1}
    assert (await call(http, "POST", path, gadget)).status == 201


async def test_deleting_a_crd_deletes_its_objects_and_stops_serving_it(http):
    await call(http, "POST", WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                       "metadata": {"name": "w"}, "spec": {}})
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
    assert (await call(http, "DELETE", crd_path)).status == 200
    assert (await call(http, "GET", crd_path)).status == 404
    assert (await call(http, "GET", WIDGETS)).status == 404
    assert (await call(http, "GET", "/apis/example.com/v1")).status == 404


async def test_crd_with_mismatched_name_is_422(http):
    crd = dict(WIDGET_CRD, metadata={"name": "wrong.example.com"})
    reply = await call(http, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert reply.status == 422
    assert reply["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": 'Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group'}]


async def test_unknown_resource_is_404(http):
    assert (await call(http, "GET", "/apis/example.com/v1/nothings")).status == 404
    assert (await call(http, "GET", "/apis/nowhere.io/v1")).status == 404


async def test_tables_use_the_printer_columns_of_the_crd(api, http):
    await call(http, "POST", AGS, session())
    api.patch_status("agentsessions", "default", "s1", {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "reason": "Up",
                                            "lastTransitionTime": "2024-01-01T00:00:00Z",
                                            "message": ""}]})
    reply = await call(http, "GET", AGS, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    columns = [c["name"] for c in reply["columnDefinitions"]]
    cells = dict(zip(columns, reply["rows"][0]["cells"], strict=True))
    assert reply["kind"] == "Table"
    assert columns[:2] == ["Name", "Phase"]
    assert cells["Name"] == "s1" and cells["Phase"] == "Running" and cells["Ready"] == "True"
    assert re.fullmatch(r"\d+s", cells["Age"])


async def test_a_client_asking_for_metadata_alone_gets_partial_object_metadata(http):
    # As a real API server answers a metadata informer (client-go's; the operator's own for
    # Secrets and ConfigMaps, the gateway's namespace list): no spec, data or status on the wire.
    metadata = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    listing = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    created = await call(http, "POST", CONFIGMAPS, configmap("meta", labels={"app": "x"}))
    reply = await call(http, "GET", CONFIGMAPS, params={"limit": "1"}, headers={"Accept": listing})
    assert reply["kind"] == "PartialObjectMetadataList" and reply["apiVersion"] == "meta.k8s.io/v1"
    (item,) = reply["items"]
    assert item == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": created["metadata"]}
    one = await call(http, "GET", f"{CONFIGMAPS}/meta", headers={"Accept": metadata})
    assert one.body == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": created["metadata"]}
    async with Watch(http, CONFIGMAPS, headers={"Accept": metadata},
                     resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        changed = await call(http, "PATCH", f"{CONFIGMAPS}/meta", {"data": {"k": "w"}}, content_type=MERGE)
        event = await watch.next()
    assert event == {"type": "MODIFIED", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                    "metadata": changed["metadata"]}}
    missing = await call(http, "GET", f"{CONFIGMAPS}/none", headers={"Accept": metadata})
    assert missing.status == 404 and missing["kind"] == "Status"  # an error is a Status, as ever


async def test_openapi_v3_serves_crd_schemas_with_patch_field_validation(http):
    index = await call(http, "GET", "/openapi/v3")
    url = index["paths"]["apis/agentsession.dev/v1alpha1"]["serverRelativeURL"]
    document = await call(http, "GET", url)
    schema = document["components"]["schemas"]["dev.agentsession.v1alpha1.AgentSession"]
    patch = document["paths"]["/apis/agentsession.dev/v1alpha1/namespaces/{namespace}/agentsessions/{name}"]["patch"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "agentsession.dev", "version": "v1alpha1", "kind": "AgentSession"}]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


# --- pods/log and events --------------------------------------------------------------------


async def test_pod_log_returns_the_text_the_harness_set(api, http):
    await call(http, "POST", PODS, pod("p"))
    api.set_pod_log("default", "p", "one\ntwo\nthree\n")
    full = await call(http, "GET", f"{PODS}/p/log")
    tail = await call(http, "GET", f"{PODS}/p/log", params={"tailLines": "2"})
    limited = await call(http, "GET", f"{PODS}/p/log", params={"limitBytes": "5", "container": "main"})
    wrong = await call(http, "GET", f"{PODS}/p/log", params={"container": "other"})
    assert (full.body, tail.body, limited.body) == ("one\ntwo\nthree\n", "two\nthree\n", "one\nt")
    assert full.headers["Content-Type"].startswith("text/plain")
    assert wrong.status == 400
    assert (await call(http, "GET", f"{PODS}/missing/log")).status == 404


async def test_pod_log_follow_streams_appended_text_until_the_pod_is_gone(api, http):
    await call(http, "POST", PODS, pod("p"))
    api.set_pod_log("default", "p", "first\n")
    async with http.get(f"{PODS}/p/log", params={"follow": "true"}) as response:
        assert await asyncio.wait_for(response.content.readline(), DEADLINE) == b"first\n"
        api.append_pod_log("default", "p", "second\n")
        assert await asyncio.wait_for(response.content.readline(), DEADLINE) == b"second\n"
        api.delete("pods", "default", "p")
        assert await asyncio.wait_for(response.content.read(), DEADLINE) == b""


async def test_core_and_events_k8s_io_events_can_be_created_and_listed(http):
    core = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "s1-"},
            "involvedObject": {"kind": "AgentSession", "name": "s1", "namespace": "default"},
            "reason": "Created", "message": "created", "type": "Normal"}
    modern = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
              "regarding": {"kind": "AgentSession", "name": "s1"}, "reason": "Started",
              "note": "started", "type": "Normal", "action": "Start",
              "reportingController": "agent-sessions", "reportingInstance": "x",
              "eventTime": "2024-01-01T00:00:00.000000Z"}
    assert (await call(http, "POST", "/api/v1/namespaces/default/events", core)).status == 201
    assert (await call(http, "POST", "/apis/events.k8s.io/v1/namespaces/default/events", modern)).status == 201
    listed = await call(http, "GET", "/api/v1/namespaces/default/events",
                        params={"fieldSelector": "involvedObject.kind=AgentSession,reason=Created"})
    assert [e["reason"] for e in listed["items"]] == ["Created"]
    modern_listed = await call(http, "GET", "/apis/events.k8s.io/v1/events")
    assert [e["metadata"]["name"] for e in modern_listed["items"]] == ["e1"]


# --- harness: request log, faults, dropped watches ------------------------------------------


async def test_requests_are_recorded_and_writes_can_be_counted(api, http):
    api.reset_requests()
    await call(http, "POST", AGS, session())
    await call(http, "PATCH", f"{AGS}/s1/status", {"status": {"phase": "Running"}}, content_type=MERGE)
    await call(http, "PATCH", f"{AGS}/s1", {"spec": {"title": "t"}}, content_type=MERGE)
    await call(http, "GET", f"{AGS}/s1")
    first = api.requests[0]
    assert (first.method, first.kind, first.namespace, first.status) == ("POST", "AgentSession", "default", 201)
    assert first.body["metadata"]["name"] == "s1" and first.content_type == "application/json"
    assert len(api.requests) == 4 and len(api.writes(kind="AgentSession")) == 3
    assert [w.method for w in api.writes(kind="AgentSession", subresource="status")] == ["PATCH"]
    assert len(api.writes(resource="agentsessions", subresource=None)) == 2
    status_patch = api.writes(subresource="status")[0]
    assert status_patch.content_type == MERGE and status_patch.query == {}


async def test_fail_next_injects_failures_before_any_state_changes(api, http):
    api.fail_next("POST", r"/configmaps$", 500)
    api.fail_next("PATCH", r"/configmaps/c$", 409, count=2)
    api.fail_next(None, r"/configmaps", 429, retry_after=3)
    failed = await call(http, "POST", CONFIGMAPS, configmap("c"))
    throttled = await call(http, "POST", CONFIGMAPS, configmap("c"))
    created = await call(http, "POST", CONFIGMAPS, configmap("c"))
    conflicts = [await call(http, "PATCH", f"{CONFIGMAPS}/c", {"data": {}}, content_type=MERGE)
                 for _ in range(3)]
    assert failed.status == 500 and failed["reason"] == "InternalError"
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "3"
    assert created.status == 201
    assert [c.status for c in conflicts] == [409, 409, 200]
    assert [r.status for r in api.writes(resource="configmaps")] == [500, 429, 201, 409, 409, 200]
    api.fail_next("GET", r"^/apis/nowhere", 503)
    assert (await call(http, "GET", "/apis/nowhere/v1/things")).status == 503  # before routing


async def test_drop_watches_ends_every_open_stream(api, http):
    async with Watch(http, CONFIGMAPS) as first, Watch(http, PODS) as second:
        await call(http, "POST", CONFIGMAPS, configmap("c"))
        assert await first.events(1) == [("ADDED", "c")]
        api.drop_watches()
        assert await first.until_closed() == [] and await second.until_closed() == []


async def test_in_process_writes_follow_the_same_rules_and_emit_the_same_events(api, http):
    created = api.create("agentsessions", session())
    async with Watch(http, AGS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        api.patch_status("ags", "default", "s1", {"phase": "Running"})
        assert await watch.events(1) == [("MODIFIED", "s1")]
    assert api.get("AgentSession", "default", "s1")["status"] == {"phase": "Running"}
    assert api.get("agentsessions", "default", "nope") is None
    assert [o["metadata"]["name"] for o in api.list("ags", label_selector="!x")] == ["s1"]
    with pytest.raises(ApiError) as conflict:
        api.patch("ags", "default", "s1", {"metadata": {"resourceVersion": "1"}})
    assert conflict.value.code == 409


async def test_wait_for_async_returns_once_a_write_makes_the_condition_true(api):
    waiter = asyncio.create_task(api.wait_for_async(lambda: api.get("configmaps", "default", "late")))
    await asyncio.sleep(0)  # let the waiter check once and subscribe
    assert not waiter.done()
    api.create("configmaps", configmap("late"))
    assert (await waiter)["metadata"]["name"] == "late"
    with pytest.raises(TimeoutError):
        await api.wait_for_async(lambda: False, timeout=0.05)


# --- clients ----------------------------------------------------------------------------------


async def test_kubernetes_asyncio_client_works_against_it(api, tmp_path):
    from kubernetes_asyncio import client, config, watch

    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        await core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="k"), data={"a": "b"}))
        await custom.create_namespaced_custom_object("agentsession.dev", "v1alpha1", "default",
                                                     "agentsessions", session())
        await custom.patch_namespaced_custom_object_status(
            "agentsession.dev", "v1alpha1", "default", "agentsessions", "s1",
            {"status": {"phase": "Running"}}, _content_type=MERGE)
        listed = await core.list_namespaced_config_map("default", label_selector="!missing")
        assert [c.metadata.name for c in listed.items] == ["k"]
        fetched = await custom.get_namespaced_custom_object(
            "agentsession.dev", "v1alpha1", "default", "agentsessions", "s1")
        assert fetched["status"] == {"phase": "Running"}
        with pytest.raises(client.ApiException) as missing:
            await core.read_namespaced_pod("nope", "default")
        assert missing.value.status == 404
        api.create("configmaps", configmap("later"))
        async with watch.Watch() as watcher:
            events = watcher.stream(core.list_namespaced_config_map, "default",
                                    resource_version=listed.metadata.resource_version,
                                    timeout_seconds=2)
            event = await asyncio.wait_for(anext(events), DEADLINE)
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "later")


async def test_running_api_serves_from_its_own_thread_without_touching_this_loop():
    with running_api(crds=[AGENTSESSION_CRD]) as api:
        url = api.url
        writer = threading.Thread(target=api.create, args=("agentsessions", session()))
        writer.start()
        writer.join()
        async with aiohttp.ClientSession(url) as http:
            reply = await call(http, "GET", f"{AGS}/s1")
            assert reply.status == 200 and reply["metadata"]["uid"]
            async with Watch(http, AGS, resourceVersion=reply["metadata"]["resourceVersion"]) as watch:
                writer = threading.Thread(target=api.patch_status,
                                          args=("ags", "default", "s1", {"phase": "Running"}))
                writer.start()
                writer.join()
                assert await watch.events(1) == [("MODIFIED", "s1")]
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(f"{url}/version")
    assert "strict-kubernetes-api" not in [thread.name for thread in threading.enumerate()]


def test_kopf_operator_runs_against_it(tmp_path, monkeypatch):
    import kopf

    registry = kopf.OperatorRegistry()
    resource = ("agentsession.dev", "v1alpha1", "agentsessions")

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = "agentsession.dev/test"

    @kopf.on.create(*resource, registry=registry)
    def created(body: Any, patch: Any, **_: Any) -> None:
        kopf.info(body, reason="Started", message="started")
        patch.status["phase"] = "Running"

    @kopf.on.delete(*resource, registry=registry)
    def deleted(**_: Any) -> None:
        pass

    with running_api(crds=[AGENTSESSION_CRD]) as api:
        monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        stop, ready = threading.Event(), threading.Event()
        operator = threading.Thread(target=asyncio.run, args=(kopf.operator(
            registry=registry, standalone=True, clusterwide=True, stop_flag=stop,
            ready_flag=ready),))
        operator.start()
        try:
            assert ready.wait(DEADLINE)
            api.create("agentsessions", session())
            running = api.wait_for(lambda: (obj := api.get("ags", "default", "s1"))
                                   and obj.get("status", {}).get("phase") == "Running"
                                   and obj["metadata"].get("finalizers") and obj)
            assert running["metadata"]["finalizers"] == ["agentsession.dev/test"]
            api.wait_for(lambda: api.list("events", "default", field_selector="reason=Started"))
            api.delete("ags", "default", "s1")
            api.wait_for(lambda: api.get("ags", "default", "s1") is None)
        finally:
            stop.set()
            operator.join(DEADLINE * 2)
        assert not operator.is_alive()
    status_writes = api.writes(kind="AgentSession", subresource="status")
    assert status_writes and all(w.status == 200 for w in api.writes(kind="AgentSession"))


# --- kubectl ----------------------------------------------------------------------------------


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_gets_applies_and_deletes(tmp_path):
    with running_api() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

        def kubectl(*args: str) -> str:
            result = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                 *args], capture_output=True, text=True, timeout=60, check=False)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert kubectl("get", "pods") == ""
        assert "created" in kubectl("apply", "-f", str(ROOT / "crds" / "agentsessions.yaml"))
        sample = str(ROOT / "manifests" / "samples" / "11-session-minimal.yaml")
        assert "agentsession.agentsession.dev/minimal created" in kubectl("apply", "-f", sample)
        assert "unchanged" in kubectl("apply", "-f", sample)
        listing = kubectl("get", "ags")
        assert listing.split()[:8] == ["NAME", "PHASE", "PROVIDER", "READY", "REASON", "HEALTH", "TITLE", "AGE"]
        assert "minimal" in listing
        as_yaml = yaml.safe_load(kubectl("get", "ags", "-o", "yaml"))
        assert as_yaml["items"][0]["metadata"]["generation"] == 1
        assert "The agent process." in kubectl("explain", "ags.spec.agent")
        assert 'agentsession.agentsession.dev "minimal" deleted' in kubectl("delete", "ags", "minimal")
        assert api.get("agentsessions", "default", "minimal") is None
