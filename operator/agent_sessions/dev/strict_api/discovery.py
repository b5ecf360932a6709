"""Discovery and the other non-resource paths: ``/``, ``/version``, health checks, ``/api``,
``/apis``, group and resource lists, and ``/openapi/v3`` with the CRD schemas."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_sessions.dev.object_store import ApiError
from agent_sessions.dev.openapi import openapi_v3_document, openapi_v3_index
from agent_sessions.dev.strict_api.codec import json_response, no_such_resource


class Discovery:
    """Non-resource paths of :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI`
    (a mixin: it uses the server's catalogue and version)."""

    async def _serve_non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on "
                                                    "the requested resource")
        parts = [p for p in path.split("/") if p]
        document: Any = None
        if path == "/":
            document = {"paths": sorted(self._paths())}
        elif path == "/version":
            major, minor = self.kubernetes_version.lstrip("v").split(".")[:2]
            document = {"major": major, "minor": minor, "gitVersion": self.kubernetes_version,
                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                        "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5",
                        "compiler": "gc", "platform": "linux/amd64"}
        elif path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        elif path == "/api":
            host = self.url.removeprefix("http://")
            document = self.catalogue.api_versions(host)
        elif path == "/apis":
            document = self.catalogue.group_list()
        elif parts[0] == "api" and len(parts) == 2:
            document = self.catalogue.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            document = self.catalogue.group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            document = self.catalogue.resource_list(parts[1], parts[2])
        elif path == "/openapi/v3":
            document = openapi_v3_index(self.catalogue)
        elif parts[:2] == ["openapi", "v3"]:
            document = openapi_v3_document(self.catalogue, "/".join(parts[2:]))
        if document is None:
            raise no_such_resource()
        return json_response(document)

    def _paths(self) -> set[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz",
                 "/openapi/v3"}
        for group, version in self.catalogue.group_versions():
            if group:
                paths |= {f"/apis/{group}", f"/apis/{group}/{version}"}
        return paths
