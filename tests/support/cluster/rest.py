"""A small synchronous JSON client for a real kube-apiserver.

It has the calls the tests already make on the embedded API
(`agent_sessions.dev.strict_api.StrictKubernetesAPI`: get/list/create/patch/patch_status/delete/
wait_for), so a scenario reads the same on both backends. Resources are named by plural; the
plural → path mapping comes from discovery, refreshed once when a name is unknown (a CRD that was
just established).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer: ``code`` is the HTTP status, ``reason``/``message`` the API's Status."""

    def __init__(self, code: int, message: str, reason: str = "", status: dict | None = None,
                 method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {code} {reason}: {message}".strip())
        self.code = code
        self.message = message
        self.reason = reason
        self.status = status or {}


@dataclass(frozen=True)
class Resource:
    """A served resource: ``prefix`` is ``/api/v1`` or ``/apis/<group>/<version>``."""

    plural: str
    kind: str
    prefix: str
    namespaced: bool
    group: str
    version: str
    subresources: frozenset[str]

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", urllib.parse.quote(namespace, safe="")]
        parts.append(self.plural)
        if name is not None:
            parts.append(urllib.parse.quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


class RestClient:
    """Bearer-token JSON client over one HTTPS connection per thread."""

    def __init__(self, url: str, token: str, ca_file: str | Path, *, timeout: float = 30.0,
                 user_agent: str = "agent-sessions-tests") -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"not an https URL: {url}")
        self.url = url
        self._host, self._port = parsed.hostname, parsed.port or 443
        self._token = token
        self._timeout = timeout
        self._user_agent = user_agent
        self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._local = threading.local()
        self._resources: dict[str, Resource] | None = None
        self._discovery_lock = threading.Lock()
        self.last_audit_id = ""
        """The ``Audit-Id`` of the last response (see ``audit.AuditLog.wait_for_audit_id``)."""

    # --- transport ----------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self._host, self._port, context=self._ssl,
                                               timeout=self._timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, *, body: Any = None, query: dict | None = None,
                content_type: str = "application/json", raw: bool = False) -> Any:
        """One request; the decoded JSON answer (text when ``raw``), ApiError when not 2xx."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                   "User-Agent": self._user_agent}
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.last_audit_id = response.getheader("Audit-Id", "")
                break
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
                # A kept-alive connection the server closed: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        if response.status >= 400:
            status: dict = {}
            try:
                status = json.loads(data)
            except ValueError:
                pass
            message = status.get("message") if isinstance(status, dict) else None
            raise ApiError(response.status, message or data.decode(errors="replace"),
                           status.get("reason", "") if isinstance(status, dict) else "",
                           status if isinstance(status, dict) else None, method, target)
        if raw:
            return data.decode(errors="replace")
        return json.loads(data) if data else None

    # --- discovery ----------------------------------------------------------------------

    def _discover(self) -> dict[str, Resource]:
        found: dict[str, Resource] = {}

        def add(prefix: str, group: str, version: str) -> None:
            listing = self.request("GET", prefix)
            subs: dict[str, set[str]] = {}
            for entry in listing.get("resources", []):
                if "/" in entry["name"]:
                    main, sub = entry["name"].split("/", 1)
                    subs.setdefault(main, set()).add(sub)
            for entry in listing.get("resources", []):
                name = entry["name"]
                if "/" in name:
                    continue
                resource = Resource(name, entry["kind"], prefix, entry["namespaced"], group,
                                    version, frozenset(subs.get(name, ())))
                for key in (name, f"{name}.{group}" if group else name, f"{group}/{version}/{name}"):
                    # The first served group wins a bare plural (core before named groups,
                    # as kubectl's discovery order does).
                    found.setdefault(key, resource)

        add("/api/v1", "", "v1")
        for group in self.request("GET", "/apis").get("groups", []):
            # The preferred version first, so that it wins bare plurals.
            preferred = group["preferredVersion"]["version"]
            versions = [preferred] + [v["version"] for v in group["versions"]
                                      if v["version"] != preferred]
            for version in versions:
                add(f"/apis/{group['name']}/{version}", group["name"], version)
        return found

    def resource(self, name: str | Resource) -> Resource:
        """A served resource by plural, ``plural.group`` or ``group/version/plural``."""
        if isinstance(name, Resource):
            return name
        with self._discovery_lock:
            if self._resources is None or name not in self._resources:
                self._resources = self._discover()
            try:
                return self._resources[name]
            except KeyError:
                raise ApiError(404, f"the server does not serve a resource named {name!r}",
                               "NotFound") from None

    def resource_for(self, api_version: str, kind: str) -> Resource:
        """The served resource of objects with this ``apiVersion`` and ``kind`` (as in a
        manifest), rediscovering once when it is unknown."""
        group, _, version = api_version.rpartition("/")
        for attempt in (1, 2):
            with self._discovery_lock:
                if self._resources is None or attempt == 2:
                    self._resources = self._discover()
                for resource in self._resources.values():
                    if (resource.group, resource.version, resource.kind) == (group, version, kind):
                        return resource
        raise ApiError(404, f"the server does not serve {kind} in {api_version}", "NotFound")

    def forget_discovery(self) -> None:
        with self._discovery_lock:
            self._resources = None

    # --- the embedded API's calls -------------------------------------------------------

    def get(self, resource: str | Resource, namespace: str | None, name: str) -> dict | None:
        try:
            return self.request("GET", self.resource(resource).path(namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(self, resource: str | Resource, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict]:
        answer = self.request("GET", self.resource(resource).path(namespace),
                              query={"labelSelector": label_selector,
                                     "fieldSelector": field_selector})
        return answer.get("items", [])

    def create(self, resource: str | Resource, body: dict, namespace: str | None = None, *,
               dry_run: bool = False) -> dict:
        rtype = self.resource(resource)
        if rtype.namespaced:
            namespace = namespace or (body.get("metadata") or {}).get("namespace") or "default"
        return self.request("POST", rtype.path(namespace), body=body,
                            query={"dryRun": "All" if dry_run else None})

    def replace(self, resource: str | Resource, namespace: str | None, name: str, body: dict,
                subresource: str | None = None) -> dict:
        return self.request("PUT", self.resource(resource).path(namespace, name, subresource),
                            body=body)

    def patch(self, resource: str | Resource, namespace: str | None, name: str, patch: Any, *,
              content_type: str = MERGE_PATCH, subresource: str | None = None) -> dict:
        return self.request("PATCH", self.resource(resource).path(namespace, name, subresource),
                            body=patch, content_type=content_type)

    def patch_status(self, resource: str | Resource, namespace: str | None, name: str,
                     status: dict) -> dict:
        """Merge-patches ``.status`` through the status subresource (or the object if none)."""
        rtype = self.resource(resource)
        sub = "status" if "status" in rtype.subresources else None
        return self.patch(rtype, namespace, name, {"status": status}, subresource=sub)

    def delete(self, resource: str | Resource, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, grace_period_seconds: int | None = None,
               preconditions: dict | None = None) -> dict:
        options: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions is not None:
            options["preconditions"] = preconditions
        return self.request("DELETE", self.resource(resource).path(namespace, name), body=options)

    def bind(self, namespace: str, name: str, node: str, *, uid: str | None = None) -> dict:
        """``POST pods/{name}/binding``, as the scheduler does."""
        meta: dict = {"name": name, "namespace": namespace}
        if uid:
            meta["uid"] = uid
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": meta,
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return self.request("POST", self.resource("pods").path(namespace, name, "binding"),
                            body=binding)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0,
                 interval: float = 0.02) -> T:
        """Polls ``predicate()`` every ``interval`` seconds until it is truthy and returns
        it; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(min(interval, remaining))
