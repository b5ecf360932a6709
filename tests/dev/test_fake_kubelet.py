"""The fake kubelet: the node's side of a pod's life for the embedded API, without processes.

Each test states what a scheduler and kubelet do for a pod on a real cluster and checks that the
fake one does it, seen through the API (deletes go over HTTP, as the operator sends them).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from agent_sessions.dev.fake_kubelet import FakeKubelet
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api

NS = "default"
TIMEOUT = 5.0


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api() as server:
        yield server


def pod(name: str, grace: int = 20) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"terminationGracePeriodSeconds": grace,
                     "containers": [{"name": "agent", "image": "agent:1"}]}}


def http_delete(api: StrictKubernetesAPI, name: str, options: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{api.url}/api/v1/namespaces/{NS}/pods/{name}", method="DELETE",
                                     data=json.dumps(options or {}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, json.loads(response.read())


def running(api: StrictKubernetesAPI, name: str) -> dict:
    return api.wait_for(lambda: (p := api.get("pods", NS, name)) is not None
                        and (p.get("status") or {}).get("phase") == "Running" and p, timeout=TIMEOUT)


def test_a_new_pod_is_bound_to_the_embedded_node_then_runs(api):
    with FakeKubelet(api):
        api.create("pods", pod("p"))
        started = running(api, "p")
    assert started["spec"]["nodeName"] == "embedded-node"
    assert {c["type"]: c["status"] for c in started["status"]["conditions"]}["PodScheduled"] == "True"


def test_a_deleted_pod_terminates_then_the_kubelet_deletes_it_with_grace_0(api):
    with FakeKubelet(api):
        api.create("pods", pod("p"))
        uid = running(api, "p")["metadata"]["uid"]
        since = api.store.resource_version
        status, body = http_delete(api, "p")
        assert status == 200 and body["metadata"]["deletionGracePeriodSeconds"] == 20
        api.wait_for(lambda: api.get("pods", NS, "p") is None, timeout=TIMEOUT)
    events = [(e.type, e.object["metadata"].get("deletionGracePeriodSeconds"))
              for e in api.store.events_after(since) if e.object["metadata"]["uid"] == uid]
    assert events == [("MODIFIED", 20), ("MODIFIED", 0), ("DELETED", 0)]  # no status written meanwhile


def test_the_pod_stays_terminating_while_its_containers_stop(api):
    with FakeKubelet(api, termination_delay=0.5):
        api.create("pods", pod("p"))
        running(api, "p")
        http_delete(api, "p")
        deleted_at = time.monotonic()
        assert api.get("pods", NS, "p")["metadata"]["deletionTimestamp"]
        api.wait_for(lambda: api.get("pods", NS, "p") is None, timeout=TIMEOUT)
    assert time.monotonic() - deleted_at >= 0.45


def test_a_pod_deleted_with_grace_0_is_gone_before_the_kubelet_acts(api):
    with FakeKubelet(api, termination_delay=30):
        api.create("pods", pod("p"))
        running(api, "p")
        status, body = http_delete(api, "p", {"gracePeriodSeconds": 0})
        assert status == 200 and api.get("pods", NS, "p") is None


def test_a_new_pod_of_the_same_name_is_not_deleted_by_the_kubelet(api):
    with FakeKubelet(api, termination_delay=0.3):
        api.create("pods", pod("p"))
        running(api, "p")
        http_delete(api, "p")
        http_delete(api, "p", {"gracePeriodSeconds": 0})  # forced: the kubelet's delete is still due
        api.create("pods", pod("p"))
        new_uid = running(api, "p")["metadata"]["uid"]
        time.sleep(0.5)  # past the old pod's due delete: nothing signals a delete that must not happen
        survivor = api.get("pods", NS, "p")
    assert survivor is not None and survivor["metadata"]["uid"] == new_uid
    assert not survivor["metadata"].get("deletionTimestamp")
