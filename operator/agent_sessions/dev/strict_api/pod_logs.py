"""``pods/log``: the text a harness sets for a pod (there is no kubelet here), with
``container``, ``tailLines``, ``limitBytes`` and ``follow``; forgotten when the pod goes."""

from __future__ import annotations

import asyncio

from aiohttp import web

from agent_sessions.dev.object_store import bad_request
from agent_sessions.dev.strict_api.codec import Target, number_param, truthy
from agent_sessions.dev.strict_api.streams import Stream


class PodLogs:
    """Pod logs of :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI` (a mixin:
    the server owns ``_pod_logs``, ``_log_streams`` and ``_logs_lock``)."""

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """The text ``GET pods/log`` returns for the pod (``container`` None = the default)."""
        with self._logs_lock:
            self._pod_logs.setdefault((namespace, name), {})[container] = text
        self._wake_log_followers(namespace, name)

    def append_pod_log(self, namespace: str, name: str, text: str,
                       container: str | None = None) -> None:
        with self._logs_lock:
            logs = self._pod_logs.setdefault((namespace, name), {})
            logs[container] = logs.get(container, "") + text
        self._wake_log_followers(namespace, name)

    async def _pod_log(self, request: web.Request, target: Target) -> web.StreamResponse:
        namespace, name, query = target.namespace or "", target.name or "", request.query
        pod = self.store.get(target.rtype, namespace, name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        if container is None:
            if len(containers) > 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose "
                                  f"one of: [{' '.join(containers)}]")
            container = containers[0] if containers else None
        elif container not in containers:
            raise bad_request(f"container {container} is not valid for pod {name}")

        def current() -> str:
            with self._logs_lock:
                logs = self._pod_logs.get((namespace, name), {})
                return logs[container] if container in logs else logs.get(None, "")

        text = current()
        if query.get("tailLines"):
            tail = int(number_param(query, "tailLines"))
            text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
        limit = int(number_param(query, "limitBytes"))
        if limit > 0:
            text = text.encode()[:limit].decode(errors="ignore")
        if not truthy(query.get("follow")):
            return web.Response(text=text, content_type="text/plain")

        stream = Stream(asyncio.get_running_loop(), "log")
        self._track(stream)
        with self._logs_lock:
            self._log_streams.setdefault((namespace, name), set()).add(stream)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        try:
            await response.prepare(request)
            await response.write(text.encode())
            sent = len(current())
            while not stream.stopped:
                stream.wake.clear()
                full = current()
                if len(full) < sent:
                    sent = 0
                if len(full) > sent:
                    await response.write(full[sent:].encode())
                    sent = len(full)
                if self.get(target.rtype, namespace, name) is None:
                    break
                await stream.wake.wait()
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            self._untrack(stream)
            with self._logs_lock:
                self._log_streams.get((namespace, name), set()).discard(stream)
        return response

    def _wake_log_followers(self, namespace: str, name: str) -> None:
        with self._logs_lock:
            streams = list(self._log_streams.get((namespace, name), ()))
        for stream in streams:
            stream.notify()

    def _forget_pod_log(self, group_resource: tuple[str, str], obj: dict) -> None:
        if group_resource == ("", "pods"):
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            with self._logs_lock:
                self._pod_logs.pop(key, None)
            self._wake_log_followers(*key)
