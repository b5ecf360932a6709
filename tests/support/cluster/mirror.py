"""The embedded API's in-process interface, backed by a real kube-apiserver.

`FakeKubelet` and `LocalPodRunner` (``agent_sessions.dev``) are written against
`StrictKubernetesAPI`: they read pods from its store, wake on its commits (``store.subscribe``),
read what changed from its event history (``store.events_after``), learn of removals through
``store.removal_hooks`` and write through ``api.patch``/``patch_status``/``delete``/``bind`` and
``set_pod_log``/``append_pod_log``. `MirrorAPI` offers exactly that, so both run unchanged
against a real server:

* **Reads** come from an in-memory mirror fed by watches on the real server: the pods bound to
  the node (``fieldSelector=spec.nodeName=<node>``, as the node's own user, as a kubelet does)
  and, when asked for, all Secrets and ConfigMaps (for environment resolution; as a user that
  may read them). Every change becomes a `WatchEvent` with a local, increasing resourceVersion,
  recorded the way the embedded store records them; a list after a (re)connect is diffed
  against the mirror, so nothing is missed nor seen twice.
* **Writes** go to the real server as the node's user (``pods/status`` patches, DELETE with
  grace 0 and a uid precondition); the object a write returns is put into the mirror at once
  (read-your-writes, as in-process), and the watch's copy of it is then recognised as known.
  Errors are raised as the embedded API's `ApiError` (the kubelets catch that one).
* **Binding** is the scheduler's job on a real cluster: pods arrive bound, and ``bind`` answers
  409 as the server would for a bound pod.
* **Logs** live here (``set_pod_log``/``append_pod_log``/``pod_log``); the node serves them on
  its kubelet port (``node.py``). A pod's log goes when the pod does.
"""

from __future__ import annotations

import copy
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_sessions.dev.object_store import ApiError, EventLog, WatchEvent

from .rest import MERGE_PATCH, RestClient
from .rest import ApiError as RestApiError

logger = logging.getLogger(__name__)

GroupResource = tuple[str, str]
PODS: GroupResource = ("", "pods")
SECRETS: GroupResource = ("", "secrets")
CONFIGMAPS: GroupResource = ("", "configmaps")
_PLURALS = {"pods": PODS, "secrets": SECRETS, "configmaps": CONFIGMAPS,
            "v1/pods": PODS, "v1/secrets": SECRETS, "v1/configmaps": CONFIGMAPS}


def _group_resource(resource: Any) -> GroupResource:
    name = getattr(resource, "plural", resource)
    try:
        return _PLURALS[name]
    except KeyError:
        raise ApiError(404, "NotFound", f"the mirror holds no {name!r}") from None


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _translate(exc: RestApiError) -> ApiError:
    return ApiError(exc.code, exc.reason or "Unknown", exc.message, (exc.status or {}).get("details"))


class MirrorStore:
    """The store part of the interface: objects, event history, listeners, removal hooks."""

    def __init__(self, history_size: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._objects: dict[GroupResource, dict[tuple[str, str], dict]] = {}
        self._log = EventLog(history_size)
        self._gone: deque[str] = deque(maxlen=10_000)
        """uids removed lately: a late write response must not bring one back."""
        self.removal_hooks: list[Callable[[GroupResource, dict], None]] = []

    # --- the embedded store's interface -----------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._log.resource_version

    def events_after(self, resource_version: int) -> list[WatchEvent]:
        with self._lock:
            return self._log.after(resource_version)

    def subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._log.listeners.add(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._log.listeners.discard(listener)

    # --- reading ------------------------------------------------------------------------

    def get(self, group_resource: GroupResource, namespace: str, name: str) -> dict | None:
        with self._lock:
            obj = self._objects.get(group_resource, {}).get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, group_resource: GroupResource, namespace: str | None = None) -> list[dict]:
        with self._lock:
            bucket = self._objects.get(group_resource, {})
            return [copy.deepcopy(obj) for key, obj in sorted(bucket.items())
                    if namespace is None or key[0] == namespace]

    def keys(self, group_resource: GroupResource) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._objects.get(group_resource, {}))

    # --- feeding (from the watches and from write responses) ----------------------------

    def put(self, group_resource: GroupResource, obj: dict) -> None:
        """Records ``obj`` unless the mirror already holds this or a newer version of it."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self._lock:
            if meta.get("uid") in self._gone:
                return
            bucket = self._objects.setdefault(group_resource, {})
            old = bucket.get(key)
            if old is not None and old["metadata"].get("uid") == meta.get("uid") \
                    and _rv(old) >= _rv(obj):
                return
            if old is not None and old["metadata"].get("uid") != meta.get("uid"):
                # A new object of the same name while the old one's removal was not seen.
                self._removed(group_resource, key, old)
            bucket[key] = copy.deepcopy(obj)
            self._emit(group_resource, "ADDED" if old is None else "MODIFIED", obj, old)

    def remove(self, group_resource: GroupResource, obj: dict) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self._lock:
            old = self._objects.get(group_resource, {}).get(key)
            if old is None or old["metadata"].get("uid") != meta.get("uid"):
                return
            self._removed(group_resource, key, obj)

    def _removed(self, group_resource: GroupResource, key: tuple[str, str], final: dict) -> None:
        self._objects[group_resource].pop(key, None)
        self._gone.append(final["metadata"].get("uid"))
        self._emit(group_resource, "DELETED", final, final)
        for hook in list(self.removal_hooks):
            try:
                hook(group_resource, copy.deepcopy(final))
            except Exception:  # noqa: BLE001 - one hook must not stop the mirror
                logger.exception("removal hook failed")

    def _emit(self, group_resource: GroupResource, kind: str, obj: dict, old: dict | None) -> None:
        self._log.append(WatchEvent(self._log.next_version(), group_resource, kind, copy.deepcopy(obj), old))


class _Watch:
    """list + watch of one collection into the store, in a thread, relisting after errors."""

    def __init__(self, store: MirrorStore, client: RestClient, group_resource: GroupResource,
                 path: str, field_selector: str | None, token: str, ca_file: str | Path) -> None:
        self.store, self.client, self.group_resource = store, client, group_resource
        self.path, self.field_selector = path, field_selector
        self._token = token
        self._ssl = ssl.create_default_context(cafile=str(ca_file))
        parsed = urllib.parse.urlsplit(client.url)
        self._host, self._port = parsed.hostname, parsed.port
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._connection: http.client.HTTPSConnection | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"mirror watch {group_resource[1]}")

    def start(self) -> None:
        self._thread.start()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._list()
                self._synced.set()
                self._watch(version)
            except Exception as exc:  # noqa: BLE001 - relist, as informers do
                if self._stop.is_set():
                    return
                logger.debug("watch of %s ended: %s", self.group_resource, exc)
                self._stop.wait(0.2)

    def _list(self) -> str:
        answer = self.client.request("GET", self.path, query={"fieldSelector": self.field_selector})
        seen = set()
        for item in answer.get("items", []):
            self.store.put(self.group_resource, item)
            seen.add((item["metadata"].get("namespace", ""), item["metadata"]["name"]))
        for key in self.store.keys(self.group_resource) - seen:
            obj = self.store.get(self.group_resource, *key)
            if obj is not None:
                self.store.remove(self.group_resource, obj)
        return answer["metadata"]["resourceVersion"]

    def _watch(self, version: str) -> None:
        query = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": "300"}
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        connection = http.client.HTTPSConnection(self._host, self._port, context=self._ssl,
                                                 timeout=None)
        self._connection = connection
        try:
            if self._stop.is_set():
                return
            connection.request("GET", f"{self.path}?{urllib.parse.urlencode(query)}", headers={
                "Authorization": f"Bearer {self._token}", "Accept": "application/json",
                "User-Agent": "sim-node/mirror"})
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"watch answered {response.status}: {response.read()[:200]!r}")
            while not self._stop.is_set():
                line = response.readline()
                if not line:
                    return  # the server ended the watch: relist
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind in ("ADDED", "MODIFIED"):
                    self.store.put(self.group_resource, obj)
                elif kind == "DELETED":
                    self.store.remove(self.group_resource, obj)
                elif kind == "ERROR":
                    return  # e.g. 410 Gone: relist
        finally:
            self._connection = None
            connection.close()


class MirrorAPI:
    """What FakeKubelet and LocalPodRunner use of `StrictKubernetesAPI`, on a real server.

    ``client`` (the node's user) watches the node's pods and makes every write; ``config_client``
    (None: no Secrets/ConfigMaps) watches Secrets and ConfigMaps in all namespaces.
    """

    def __init__(self, client: RestClient, node_name: str, *, token: str, ca_file: str | Path,
                 config_client: RestClient | None = None, config_token: str = "") -> None:
        self.client = client
        self.node_name = node_name
        self.store = MirrorStore()
        self.store.removal_hooks.append(self._forget_pod_log)
        self._logs_lock = threading.Lock()
        self._logs_changed = threading.Condition(self._logs_lock)
        self._pod_logs: dict[tuple[str, str], dict[str | None, str]] = {}
        self._config_client = config_client
        self._watches = [_Watch(self.store, client, PODS, "/api/v1/pods",
                                f"spec.nodeName={node_name}", token, ca_file)]
        if config_client is not None:
            for group_resource in (SECRETS, CONFIGMAPS):
                self._watches.append(_Watch(self.store, config_client, group_resource,
                                            f"/api/v1/{group_resource[1]}", None, config_token,
                                            ca_file))

    def start(self, timeout: float = 10.0) -> MirrorAPI:
        for watch in self._watches:
            watch.start()
        for watch in self._watches:
            if not watch.wait_synced(timeout):
                raise TimeoutError(f"the mirror's first list of {watch.group_resource} took over {timeout}s")
        return self

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()

    # --- reads --------------------------------------------------------------------------

    def get(self, resource: Any, namespace: str | None, name: str) -> dict | None:
        group_resource = _group_resource(resource)
        obj = self.store.get(group_resource, namespace or "", name)
        if obj is None and group_resource != PODS and self._config_client is not None:
            # Created a moment ago and not watched yet: ask the server (as the kubelet would).
            try:
                obj = self._config_client.get(group_resource[1], namespace, name)
            except RestApiError as exc:
                raise _translate(exc) from None
        return obj

    def list(self, resource: Any, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict]:
        if label_selector or field_selector:
            raise ApiError(400, "BadRequest", "the mirror lists without selectors")
        return self.store.list(_group_resource(resource), namespace)

    # --- writes (to the real server, as the node) ---------------------------------------

    def _wrote(self, resource: Any, obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("metadata", {}).get("name"):
            self.store.put(_group_resource(resource), obj)
        return obj

    def patch(self, resource: Any, namespace: str | None, name: str, patch: Any, *,
              content_type: str = MERGE_PATCH, subresource: str | None = None) -> dict:
        try:
            obj = self.client.patch(getattr(resource, "plural", resource), namespace, name, patch,
                                    content_type=content_type, subresource=subresource)
        except RestApiError as exc:
            raise _translate(exc) from None
        return self._wrote(resource, obj)

    def patch_status(self, resource: Any, namespace: str | None, name: str, status: dict) -> dict:
        return self.patch(resource, namespace, name, {"status": status}, subresource="status")

    def delete(self, resource: Any, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, grace_period_seconds: int | None = None,
               preconditions: dict | None = None) -> dict:
        try:
            return self.client.delete(getattr(resource, "plural", resource), namespace, name,
                                      propagation_policy=propagation_policy,
                                      grace_period_seconds=grace_period_seconds,
                                      preconditions=preconditions)
        except RestApiError as exc:
            raise _translate(exc) from None

    def bind(self, namespace: str, name: str, node: str, *, uid: str | None = None) -> dict:
        """The scheduler binds pods on a real cluster: a pod the mirror sees is bound already."""
        raise ApiError(409, "Conflict", f"pod {name} is already assigned to node {self.node_name!r}")

    # --- logs ---------------------------------------------------------------------------

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """The text the node serves as the pod's log (``container`` None = the default)."""
        with self._logs_changed:
            self._pod_logs.setdefault((namespace, name), {})[container] = text
            self._logs_changed.notify_all()

    def append_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        with self._logs_changed:
            logs = self._pod_logs.setdefault((namespace, name), {})
            logs[container] = logs.get(container, "") + text
            self._logs_changed.notify_all()

    def pod_log(self, namespace: str, name: str, container: str | None) -> str:
        with self._logs_lock:
            logs = self._pod_logs.get((namespace, name), {})
            return logs[container] if container in logs else logs.get(None, "")

    def wait_log_change(self, timeout: float) -> None:
        with self._logs_changed:
            self._logs_changed.wait(timeout)

    def _forget_pod_log(self, group_resource: GroupResource, obj: dict) -> None:
        if group_resource == PODS:
            with self._logs_changed:
                self._pod_logs.pop((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]), None)
                self._logs_changed.notify_all()


def wait(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
