"""``/openapi/v3`` documents: what kubectl reads before ``apply`` and ``explain``.

Why this exists: ``kubectl apply`` asks the OpenAPI v3 document of the object's
group-version whether its PATCH operation takes the ``fieldValidation`` query parameter;
if so, it leaves validation to the server (``fieldValidation=Strict``) instead of
validating client-side against ``/openapi/v2``.  ``kubectl explain`` renders the schema
whose ``x-kubernetes-group-version-kind`` names the kind.  So each group-version gets
paths whose operations carry that extension and the parameter, and each custom resource
its CRD schema.  Built-in kinds get paths but no schemas (``kubectl explain pods`` is not
supported).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent_sessions.dev.resources import ResourceCatalogue, ResourceType

_QUERY_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _document_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(rtype: ResourceType) -> str:
    """``dev.agentsession.v1alpha1.AgentSession``: the reversed group, as the server names it."""
    reversed_group = ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    return f"{reversed_group}.{rtype.version}.{rtype.kind}"


def _operation(rtype: ResourceType, action: str, verb: str) -> dict:
    operation: dict[str, Any] = {
        "operationId": f"{action}{rtype.kind}",
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": rtype.group, "version": rtype.version,
                                            "kind": rtype.kind},
        "responses": {"200": {"description": "OK"}},
    }
    if verb in ("patch", "put", "post"):
        operation["parameters"] = [{"name": name, "in": "query", "schema": {"type": "string"}}
                                   for name in _QUERY_PARAMETERS]
    return operation


def openapi_v3_document(catalogue: ResourceCatalogue, path: str) -> dict | None:
    """The OpenAPI v3 document of one group-version (``api/v1``, ``apis/g/v``), or None."""
    parts = path.split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    types = [t for t in catalogue if t.group == group and t.version == version]
    if not types:
        return None
    paths: dict[str, dict] = {}
    schemas: dict[str, dict] = {}
    for rtype in types:
        prefix = "/" + _document_path(group, version)
        scope = f"{prefix}/namespaces/{{namespace}}" if rtype.namespaced else prefix
        paths[f"{scope}/{rtype.plural}"] = {
            "get": _operation(rtype, "list", "list"), "post": _operation(rtype, "create", "post")}
        paths[f"{scope}/{rtype.plural}/{{name}}"] = {
            "get": _operation(rtype, "read", "get"), "put": _operation(rtype, "replace", "put"),
            "patch": _operation(rtype, "patch", "patch"),
            "delete": _operation(rtype, "delete", "delete")}
        if rtype.schema is not None:
            schema = json.loads(json.dumps(rtype.schema))
            schema["x-kubernetes-group-version-kind"] = [
                {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}]
            schemas[schema_name(rtype)] = schema
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.31.0"},
            "paths": paths, "components": {"schemas": schemas}}


def openapi_v3_index(catalogue: ResourceCatalogue) -> dict:
    """``/openapi/v3``: each group-version's document URL, with a content hash."""
    paths = {}
    for group, version in catalogue.group_versions():
        document = openapi_v3_document(catalogue, _document_path(group, version))
        digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64]
        path = _document_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}
