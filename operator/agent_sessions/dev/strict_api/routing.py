"""The HTTP entry point: every request recorded, authorized, matched to a resource, checked
for injected faults, then served by verb (get, list, create, replace, patch, delete, bind) or
handed to discovery, watches, pod logs or the reviews."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from agent_sessions.dev.authorization import RequestAttributes
from agent_sessions.dev.object_store import ApiError, bad_request
from agent_sessions.dev.resources import ResourceType
from agent_sessions.dev.strict_api.access import REVIEWS
from agent_sessions.dev.strict_api.codec import (
    PATCH_TYPES,
    Target,
    decode_body,
    delete_options,
    json_response,
    no_such_resource,
    number_param,
    selectors,
    status_response,
    truthy,
    warning_header,
)
from agent_sessions.dev.strict_api.recorded import RecordedRequest
from agent_sessions.dev.tables import partial, table, wants_metadata, wants_table


class Routing:
    """HTTP routing of :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI` (a
    mixin: it uses the server's store, catalogue, faults and request log)."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        record = RecordedRequest(method=request.method, path=request.path,
                                 query=dict(request.query), content_type=content_type,
                                 body=decode_body(raw, content_type, strict=False),
                                 timestamp=time.time(),
                                 user_agent=request.headers.get("User-Agent", ""))
        self.requests.append(record)
        try:
            attrs = self._authorize(request, record)
            unknown: ApiError | None = None
            try:
                target = self._target(request.path, request.query)
            except ApiError as exc:
                target, unknown = None, exc
            if target is not None:
                record.group, record.version = target.rtype.group, target.rtype.version
                record.resource, record.kind = target.rtype.plural, target.rtype.kind
                record.namespace, record.name = target.namespace, target.name
                record.subresource, record.watch = target.subresource, target.watch
            fault = self._faults.take(request.method, request.path)
            if fault is not None:
                raise fault
            if unknown is not None:
                raise unknown
            if target is None:
                response = await self._serve_non_resource(request)
            else:
                response = await self._serve_resource(request, target, raw, content_type, attrs)
        except ApiError as exc:
            response = status_response(exc)
        except Exception as exc:  # noqa: BLE001 - report like the server's 500, keep serving
            response = status_response(ApiError(500, "InternalError", f"{type(exc).__name__}: {exc}"))
        record.status = response.status
        return response

    def _target(self, path: str, query: Any) -> Target | None:
        """The resource a path addresses, None for non-resource paths; 404 if unknown."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        watch = truthy(query.get("watch"))
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and not (
                len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise no_such_resource()
        rtype = self.catalogue.get(group, version, rest[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise no_such_resource()
        subresource = rest[2] if len(rest) == 3 else None
        if subresource is not None and subresource not in rtype.subresources and (
                subresource != "binding" or rtype.group_resource != ("", "pods")):
            raise no_such_resource()
        return Target(rtype, namespace, rest[1] if len(rest) > 1 else None, subresource, watch)

    async def _serve_resource(self, request: web.Request, target: Target, raw: bytes,
                              content_type: str,
                              attrs: RequestAttributes | None = None) -> web.StreamResponse:
        rtype, namespace, name, sub = target.rtype, target.namespace, target.name, target.subresource
        query = request.query
        method = request.method
        validation = query.get("fieldValidation", "Warn")
        dry_run = query.get("dryRun") == "All"
        if (rtype.group, rtype.plural, rtype.kind) in REVIEWS:
            return self._review(request, target, raw, content_type, attrs)
        if method == "GET" and (target.watch or truthy(query.get("watch"))):
            return await self._watch(request, target)
        if method == "GET" and name is None:
            return self._list(request, target)
        if method == "GET" and sub == "log":
            return await self._pod_log(request, target)
        if method == "GET":
            return self._object_response(request, rtype, self.store.get(rtype, namespace, name))
        if rtype.namespaced and namespace is None and method != "GET":
            raise no_such_resource()
        if sub == "binding":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            result = self.store.bind(rtype, namespace, name, decode_body(raw, content_type),
                                     dry_run=dry_run)
            return json_response(result, status=201)
        if method in ("POST", "PUT", "PATCH"):
            self._admit_owner_references(request, target, raw, content_type, attrs)
        if method == "POST" and name is None:
            obj, warnings = self.store.create(rtype, namespace, decode_body(raw, content_type),
                                              field_validation=validation, dry_run=dry_run)
            return self._object_response(request, rtype, obj, status=201, warnings=warnings)
        if method == "PUT" and name is not None:
            obj, warnings = self.store.replace(rtype, namespace, name, decode_body(raw, content_type),
                                               subresource=sub, field_validation=validation,
                                               dry_run=dry_run)
            return self._object_response(request, rtype, obj, warnings=warnings)
        if method == "PATCH" and name is not None:
            if content_type not in PATCH_TYPES:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: {', '.join(PATCH_TYPES[:3])}")
            obj, warnings = self.store.patch(rtype, namespace, name, content_type,
                                             decode_body(raw, content_type), subresource=sub,
                                             field_validation=validation, dry_run=dry_run)
            return self._object_response(request, rtype, obj, warnings=warnings)
        if method == "DELETE":
            options = delete_options(raw, content_type, query)
            if name is None:
                labels, fields = selectors(query, rtype)
                deleted = self.store.delete_collection(
                    rtype, namespace, labels, fields,
                    propagation_policy=options.get("propagationPolicy"),
                    grace_period_seconds=options.get("gracePeriodSeconds"))
                return json_response({"kind": f"{rtype.kind}List",
                                       "apiVersion": rtype.api_version,
                                       "metadata": {"resourceVersion": str(self.store.resource_version)},
                                       "items": deleted})
            obj = self.store.delete(rtype, namespace, name,
                                    propagation_policy=options.get("propagationPolicy"),
                                    preconditions=options.get("preconditions"),
                                    grace_period_seconds=options.get("gracePeriodSeconds"),
                                    dry_run=options.get("dryRun") == ["All"] or dry_run)
            return self._object_response(request, rtype, obj)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def _object_response(self, request: web.Request, rtype: ResourceType, obj: dict,
                         status: int = 200, warnings: list[str] | None = None) -> web.Response:
        accept = request.headers.get("Accept", "")
        if wants_table(accept):
            document = table(rtype, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                             include_object=request.query.get("includeObject", "Metadata"))
        elif wants_metadata(accept) and obj.get("kind") != "Status":
            document = partial(obj)
        else:
            document = obj
        headers = CIMultiDict(("Warning", warning_header(w)) for w in warnings or [])
        return json_response(document, status=status, headers=headers)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        rtype, query = target.rtype, request.query
        labels, fields = selectors(query, rtype)
        items, resource_version = self.store.list(rtype, target.namespace, labels, fields)
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        token = query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, metadata["resourceVersion"] = tuple(state["start"]), state["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request(f"continue key is not valid: {token}") from None
            items = [i for i in items
                     if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > start]
        limit = int(number_param(query, "limit"))
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            state = {"rv": metadata["resourceVersion"],
                     "start": [last.get("namespace", ""), last["name"]]}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        accept = request.headers.get("Accept", "")
        if wants_table(accept):
            document = table(rtype, items, resource_version=metadata["resourceVersion"],
                             include_object=query.get("includeObject", "Metadata"))
            document["metadata"] = metadata
        elif wants_metadata(accept):
            document = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": metadata, "items": [partial(item) for item in items]}
        else:
            document = {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                        "metadata": metadata, "items": items}
        return json_response(document)
