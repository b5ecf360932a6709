"""Differential: the same scenario on the embedded API and on a real kube-apiserver produces the
same sequence of phases and Ready reasons (DESIGN.md §10: where they disagree, the embedded API
is wrong).

Every version of the session is recorded as the server committed it — from the embedded store's
event history, and from a watch on the real server — so a phase that lasted a millisecond is
seen too. Consecutive repeats are folded: what is compared is the sequence of (phase, reason)
the operator wrote.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.fake_kubelet import FakeKubelet
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from support.backends import api  # noqa: F401 (the fixture, parametrised by backend)
from support.cluster.real_api import RealAPI

from support.embedded import CRDS
from support.sessions import IMAGE, pods_of, session, template
from support.waits import condition, phase_is, ready, wait_session

State = tuple[str | None, str | None]


def state_of(obj: dict) -> State:
    cond = condition(obj, c.COND_READY)
    return (obj.get("status") or {}).get("phase"), cond["reason"] if cond else None


def folded(states: list[State]) -> list[State]:
    out: list[State] = []
    for state in states:
        if state != (None, None) and (not out or out[-1] != state):
            out.append(state)
    return out


def embedded_history(api: StrictKubernetesAPI, name: str) -> list[State]:
    return folded([state_of(e.object) for e in api.store.events_after(0)
                   if e.group_resource == (c.GROUP, c.SESSION_PLURAL) and e.object["metadata"]["name"] == name])


class RealHistory:
    """Every version of one session on the real server, as a client-go reflector would see it:
    a list for the starting resourceVersion, then watches resumed from the last one seen (a
    watch may end, or be refused while the watch cache of a new CRD catches up)."""

    def __init__(self, api: RealAPI, name: str) -> None:
        plane = api.plane
        self._parsed = urllib.parse.urlsplit(plane.url)
        self._ssl = ssl.create_default_context(cafile=str(plane.ca_file))
        self._headers = {"Authorization": f"Bearer {plane.tokens['admin']}"}
        self._path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/default/{c.SESSION_PLURAL}"
        self._selector = urllib.parse.quote(f"metadata.name={name}")
        self.states: list[State] = []
        self.errors: list[Any] = []
        self._conn: http.client.HTTPSConnection | None = None
        self._closing = threading.Event()
        listed = self._get(f"{self._path}?fieldSelector={self._selector}")
        assert listed.status == 200, f"list answered {listed.status}"
        body = json.loads(listed.read())
        assert body["items"] == [], "the session must not exist before the history starts"
        self._version = body["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _get(self, target: str) -> http.client.HTTPResponse:
        self._conn = http.client.HTTPSConnection(self._parsed.hostname, self._parsed.port, context=self._ssl)
        self._conn.request("GET", target, headers=self._headers)
        return self._conn.getresponse()

    def _follow(self) -> None:
        while not self._closing.is_set():
            try:
                response = self._get(f"{self._path}?watch=1&fieldSelector={self._selector}"
                                     f"&resourceVersion={self._version}&allowWatchBookmarks=true")
                if response.status != 200:  # e.g. 429 while a new CRD's watch cache starts
                    self.errors.append(response.status)
                    response.read()
                else:
                    for line in response:
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            self.errors.append(obj)
                            assert obj.get("code") != 410, f"history lost: {obj}"
                            break
                        self._version = obj["metadata"]["resourceVersion"]
                        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                            self.states.append(state_of(obj))
            except (OSError, ValueError, http.client.HTTPException) as error:
                if not self._closing.is_set():
                    self.errors.append(error)
            self._closing.wait(0.2)

    def close(self) -> list[State]:
        """End the watch and return what it saw, folded."""
        self._closing.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        if conn is not None:
            conn.close()
        return folded(self.states)


def scenario(api: Any) -> None:
    """invalid → fixed → Running → Stopped → Running → restart → deleted."""
    api.create(c.SESSION_PLURAL, session("twin", templateRef={"name": "later"}))
    wait_session(api, "twin", phase_is(c.PHASE_FAILED))
    api.create(c.TEMPLATE_PLURAL, template("later", agent={"image": IMAGE, "command": ["agent-sessions", "demo-agent"]}))
    api.patch(c.SESSION_PLURAL, "default", "twin", {"spec": {"title": "fixed"}})
    wait_session(api, "twin", ready)
    api.patch(c.SESSION_PLURAL, "default", "twin", {"spec": {"state": "Stopped"}})
    wait_session(api, "twin", phase_is(c.PHASE_STOPPED))
    api.patch(c.SESSION_PLURAL, "default", "twin", {"spec": {"state": "Running"}})
    wait_session(api, "twin", lambda o: ready(o) and o["metadata"]["generation"] == o["status"]["observedGeneration"])
    api.patch(c.SESSION_PLURAL, "default", "twin", {"metadata": {"annotations": {c.ANNOTATION_RESTART: "1"}}})
    wait_session(api, "twin", lambda o: ready(o) and o["status"].get("restartCount") == 1)
    api.delete(c.SESSION_PLURAL, "default", "twin")
    api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", "twin") is None, timeout=20)
    assert not pods_of(api, "twin")


def run_operator(kubeconfig: Path, body: Callable[[], None]) -> None:
    operator = OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig)).start()
    try:
        body()
    finally:
        operator.stop()


@pytest.mark.realcluster
def test_the_same_scenario_yields_the_same_phases_and_reasons_on_both_backends(real_cluster, tmp_path):
    with running_api(crds=CRDS) as embedded, FakeKubelet(embedded):
        run_operator(embedded.write_kubeconfig(tmp_path / "embedded"), lambda: scenario(embedded))
        on_embedded = embedded_history(embedded, "twin")

    real_cluster.ensure_crds()
    real = RealAPI(real_cluster.plane, real_cluster.proxy, real_cluster.node)
    try:
        history = RealHistory(real, "twin")
        try:
            run_operator(real.write_kubeconfig(tmp_path / "real"), lambda: scenario(real))
        finally:
            on_real = history.close()
    finally:
        real.reset_namespace("default")
        real.close()

    assert on_real == on_embedded
    assert on_real == [
        (c.PHASE_FAILED, c.REASON_INVALID_CONFIGURATION),
        (c.PHASE_CREATING, c.REASON_CREATING),
        (c.PHASE_RUNNING, c.REASON_RUNNING),
        (c.PHASE_STOPPING, c.REASON_STOPPING),
        (c.PHASE_STOPPED, c.REASON_STOPPED),
        (c.PHASE_CREATING, c.REASON_RESUMING),
        (c.PHASE_RUNNING, c.REASON_RUNNING),
        (c.PHASE_CREATING, c.REASON_CREATING),
        (c.PHASE_RUNNING, c.REASON_RUNNING),
    ]


async def test_a_custom_resource_sent_as_neither_json_nor_yaml_is_415_on_both_backends(api, tmp_path):
    # (Protobuf is left out: kube-apiserver v1.36 resets the HTTP/2 stream of a custom resource
    # sent as protobuf, INTERNAL_ERROR, where the embedded API answers 415.)
    from kubernetes_asyncio.client.exceptions import ApiException  # noqa: PLC0415

    from agent_sessions.k8s.client import make_api_client  # noqa: PLC0415

    # As the admin, straight to the server (the embedded API: no token is the admin).
    kubeconfig = api.plane.kubeconfig(tmp_path / "kubeconfig", "admin") if isinstance(api, RealAPI) \
        else api.write_kubeconfig(tmp_path / "kubeconfig")
    client = await make_api_client(str(kubeconfig))
    try:
        path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/default/{c.SESSION_PLURAL}"
        for kind in ("application/cbor", "text/plain"):
            with pytest.raises(ApiException) as refused:
                await client.call_api(path, "POST", header_params={"Content-Type": kind},
                                      body=json.dumps(session("elsewise")).encode(), auth_settings=["BearerToken"])
            status = json.loads(refused.value.body)
            assert (refused.value.status, status["reason"]) == (415, "UnsupportedMediaType"), kind
            assert status["message"].startswith("the body of the request was in an unknown format - accepted media "
                                                "types include: application/json, application/yaml"), status
    finally:
        await client.close()
