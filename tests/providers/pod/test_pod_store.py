"""The pod store: session pods as the pod watch delivers them (issue 11, observation from the watch)."""

from __future__ import annotations

import json
from typing import Any

from agent_sessions.providers import SessionRef
from agent_sessions.providers.pod import PodProvider
from agent_sessions.providers.pod.logs import secret_references
from agent_sessions.providers.pod.observe import observe_pod
from agent_sessions.providers.pod.pod_store import GONE, PodStore, trim_pod

TIER = "unit"


def pod(name: str = "ags-demo-1", *, rv: str = "10", uid: str = "pod-uid-1", phase: str = "Running",
        **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv,
                     "managedFields": [{"manager": "kubelet"}] * 20, "annotations": {"big": "x" * 4000}, **meta},
        "spec": {
            "containers": [{
                "name": "agent", "image": "example.invalid/agent:1", "command": ["run"] * 50,
                "env": [{"name": "PLAIN", "value": "v"},
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "bundle"}}],
            }],
            "volumes": [{"name": "ws", "emptyDir": {}}, {"name": "tok", "secret": {"secretName": "ags-token"}}],
        },
        "status": {"phase": phase, "podIP": "10.0.0.7"},
    }


def test_a_trimmed_pod_keeps_what_observation_and_redaction_read_and_little_else():
    full = pod()
    trimmed = trim_pod(full)
    assert trimmed["status"] == full["status"]
    assert trimmed["metadata"] == {"name": "ags-demo-1", "namespace": "default", "uid": "pod-uid-1",
                                   "resourceVersion": "10"}
    assert secret_references(trimmed) == secret_references(full)  # the same Secrets redact its log
    assert len(repr(trimmed)) < len(repr(full)) // 4


def test_of_the_status_only_what_observation_reads_is_kept_in_a_copy_of_its_own():
    full = pod()
    full["status"] |= {
        "hostIP": "10.1.0.1", "startTime": "2026-12-06T20:00:00Z", "qosClass": "Burstable",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "not yet",
                        "lastTransitionTime": "2026-12-06T20:00:01Z", "lastProbeTime": None}],
        "containerStatuses": [{"name": "agent", "ready": False, "restartCount": 2, "image": "x", "imageID": "y",
                               "containerID": "containerd://z", "started": True,
                               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                               "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
                               "volumeMounts": [{"name": "ws", "mountPath": "/workspace"}] * 5}],
    }
    trimmed = trim_pod(full)
    assert trimmed["status"] == {
        "phase": "Running", "podIP": "10.0.0.7",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "not yet"}],
        "containerStatuses": [{"name": "agent", "ready": False, "restartCount": 2,
                               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                               "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}],
    }
    assert observe_pod(trimmed) == observe_pod(full)
    full["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] = "changed"  # the event is not kept alive
    assert trimmed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_events_are_kept_in_order_and_an_older_one_never_replaces_a_newer():
    store = PodStore(watched=True)
    store.seen(None, pod(rv="10"))  # the initial listing
    store.put(pod(rv="12", phase="Succeeded"))  # our own read, ahead of the watch
    store.seen("MODIFIED", pod(rv="11", phase="Running"))  # the watch catching up
    assert store.get("default", "ags-demo-1")["status"]["phase"] == "Succeeded"
    store.seen("MODIFIED", pod(rv="13", phase="Failed"))
    assert store.get("default", "ags-demo-1")["status"]["phase"] == "Failed"


def test_an_event_says_whether_it_told_the_store_anything_new():
    # What a pod event triggers depends on it: the ADDED of a pod our own create already put in
    # the store (same resourceVersion) reconciles nothing.
    store = PodStore(watched=True)
    assert store.put(pod(rv="10"))  # the create's answer
    assert not store.seen("ADDED", pod(rv="10"))  # its echo
    assert store.seen("MODIFIED", pod(rv="11", phase="Running"))
    assert not store.seen("MODIFIED", pod(rv="11", phase="Running"))  # the same again (a re-watch)
    assert store.put(pod(rv="13", phase="Failed"))
    assert not store.seen("MODIFIED", pod(rv="12", phase="Running"))  # older than held
    assert store.seen("DELETED", pod(rv="14"))


def test_a_deleted_pod_is_dropped_but_not_its_successor_of_the_same_name():
    store = PodStore(watched=True)
    store.seen("ADDED", pod(uid="old"))
    store.seen("DELETED", pod(uid="old"))
    assert store.get("default", "ags-demo-1") is GONE and len(store) == 0
    store.put(pod(uid="old", rv="11", deletionTimestamp="2026-12-06T10:00:00Z"))  # a read answered before
    assert store.get("default", "ags-demo-1") is GONE
    store.seen("ADDED", pod(uid="new", rv="20"))
    store.seen("DELETED", pod(uid="old", rv="19"))  # the old pod's late DELETED
    assert store.get("default", "ags-demo-1")["metadata"]["uid"] == "new"
    store.seen("ADDED", pod(uid="newer", rv="5"))  # another pod of the name: a smaller rv is no reason to keep the old
    assert store.get("default", "ags-demo-1")["metadata"]["uid"] == "newer"


class CountingCore:
    """The CoreV1Api calls the provider makes, counted; pods read from a dict."""

    def __init__(self, pods: dict[str, dict]) -> None:
        self.pods = pods
        self.calls: list[str] = []

    async def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> dict:
        self.calls.append(f"read pod {name}")
        if name not in self.pods:
            from kubernetes_asyncio.client.exceptions import ApiException  # noqa: PLC0415
            raise ApiException(status=404, reason="Not Found")
        return self.pods[name]


SESSION = SessionRef(namespace="default", name="demo", uid="session-uid-1", config={})
POD_NAME = PodProvider(core_api=object())._pod_name(SESSION)


def provider_over(pods: dict[str, dict], *, watched: bool = True) -> tuple[PodProvider, CountingCore]:
    """A pod provider over `pods` (by name), its store fed by a watch (the tests play it) or not."""
    core = CountingCore(pods)
    provider = PodProvider(core_api=core)
    provider.pods.watched = watched
    return provider, core


async def test_observe_reads_a_pod_once_and_then_takes_it_from_the_store():
    name = POD_NAME
    provider, core = provider_over({name: pod(name)})
    first = await provider.observe(SESSION)
    second = await provider.observe(SESSION)
    assert (first, core.calls) == (second, [f"read pod {name}"])
    assert first.endpoint == "http://10.0.0.7:8080"


async def test_observe_follows_the_watch_without_a_request():
    provider, core = provider_over({})
    name = POD_NAME
    provider.pods.seen("ADDED", pod(name, phase="Pending"))
    assert not (await provider.observe(SESSION)).ready
    provider.pods.seen("MODIFIED", pod(name, rv="11", phase="Succeeded"))
    assert (await provider.observe(SESSION)).state.name == "SUCCEEDED"
    provider.pods.seen("DELETED", pod(name, rv="12"))
    assert (await provider.observe(SESSION)).state.name == "ABSENT"  # seen deleted: gone, no read
    provider.invalidate(SESSION)  # the runtime did not answer: maybe the watch missed something
    assert (await provider.observe(SESSION)).state.name == "ABSENT"
    assert core.calls == [f"read pod {name}"]  # only after the invalidation


async def test_what_a_watch_feeds_is_observed_as_announced_and_what_is_read_each_time_is_not():
    # Announced: the lifecycle needs no quick poll while the pod is scheduled, pulled or removed.
    for watched in (True, False):
        provider, _ = provider_over({POD_NAME: pod(POD_NAME, phase="Pending")}, watched=watched)
        assert (await provider.observe(SESSION)).announced is watched


async def test_without_a_watch_every_observe_reads():
    name = POD_NAME
    provider, core = provider_over({name: pod(name)}, watched=False)
    await provider.observe(SESSION)
    core.pods[name] = pod(name, rv="11", phase="Succeeded")  # changed, and nobody says so
    assert (await provider.observe(SESSION)).state.name == "SUCCEEDED"
    assert core.calls == [f"read pod {name}"] * 2


async def test_a_pod_seen_deleted_is_stopped_without_a_request_and_one_seen_terminating_is_waited_for():
    provider, core = provider_over({})
    name = POD_NAME
    provider.pods.seen("ADDED", pod(name, deletionTimestamp="2026-12-06T10:00:00Z"))
    await provider.stop(SESSION)  # terminating: its DELETED event will say when it is gone
    provider.pods.seen("DELETED", pod(name))
    await provider.stop(SESSION)
    assert core.calls == []


def test_a_held_pod_is_packed_and_every_get_is_a_fresh_copy_of_it():
    # Issue 11 (memory at 10,000 sessions): the store holds each trimmed pod as compressed JSON,
    # a fraction of its size as Python objects; readers get a copy they may change freely.
    store = PodStore(watched=True)
    store.seen(None, pod(rv="10"))
    held = store._pods[("default", "ags-demo-1")]
    assert held[:2] == ("pod-uid-1", "10") and isinstance(held[2], bytes)
    assert len(held[2]) < len(json.dumps(trim_pod(pod()), separators=(",", ":")))
    first = store.get("default", "ags-demo-1")
    assert first == trim_pod(pod())
    first["status"]["phase"] = "Failed"
    assert store.get("default", "ags-demo-1")["status"]["phase"] == "Running"
