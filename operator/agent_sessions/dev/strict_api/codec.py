"""Requests in, responses out: bodies, query parameters (as the server parses them), DeleteOptions,
``Status`` and JSON responses, ``Warning`` headers, and the addressed resource of a path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from multidict import CIMultiDict

from agent_sessions.dev.object_store import ApiError, bad_request
from agent_sessions.dev.resources import ResourceType
from agent_sessions.dev.selection import FieldSelector, LabelSelector, SelectorError


PATCH_TYPES = ("application/merge-patch+json", "application/json-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")


@dataclass
class Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool


def truthy(value: str | None) -> bool:
    """Go's strconv.ParseBool, which the server uses for boolean query parameters."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def no_such_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def status_response(exc: ApiError) -> web.Response:
    return json_response(exc.status(), status=exc.code, headers=CIMultiDict(exc.headers))


def json_response(document: Any, status: int = 200,
                   headers: CIMultiDict[str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(document).encode(), status=status,
                        content_type="application/json", headers=headers)


def warning_header(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def decode_body(raw: bytes, content_type: str, strict: bool = True) -> Any:
    """A request body, JSON or YAML. Strict (a create, replace or patch): an empty body is 400, and
    a body in another format (protobuf, CBOR) 415, as the API server answers it for a custom
    resource (this server decodes neither, for any resource)."""
    if strict and content_type and "json" not in content_type and "yaml" not in content_type:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json, application/yaml")
    if not raw:
        if strict:
            raise bad_request("the request body is empty")
        return None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        if strict:
            raise bad_request(f"the request body is not valid: {exc}") from None
        return raw.decode(errors="replace")


def selectors(query: Any, rtype: ResourceType) -> tuple[LabelSelector, FieldSelector]:
    """The request's selectors; 400 for bad syntax or a field the resource cannot select on."""
    try:
        fields = FieldSelector.parse(query.get("fieldSelector"))
        fields.check_supported(rtype.group, rtype.plural, rtype.selectable_fields)
        return LabelSelector.parse(query.get("labelSelector")), fields
    except SelectorError as exc:
        raise bad_request(str(exc)) from None


def number_param(query: Any, name: str, default: float = 0) -> float:
    """A numeric query parameter; 400 if it is not a number, as on the server."""
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value) if name == "timeoutSeconds" else int(value)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


def delete_options(raw: bytes, content_type: str, query: Any) -> dict:
    """DeleteOptions from the JSON body and/or the query (the query wins, as on the server)."""
    options = decode_body(raw, content_type or "application/json", strict=False) or {}
    if not isinstance(options, dict):
        raise bad_request("DeleteOptions must be an object")
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = query["gracePeriodSeconds"]
    if "orphanDependents" in query or "orphanDependents" in options:
        orphan = str(query.get("orphanDependents", options.get("orphanDependents"))).lower()
        options.setdefault("propagationPolicy", "Orphan" if orphan == "true" else "Background")
    if "dryRun" in query:
        options["dryRun"] = query.getall("dryRun")
    return options
