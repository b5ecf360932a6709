"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

Why this exists: ``kubectl get`` asks for ``Accept: application/json;as=Table`` and shows
the columns the server sends, so the CRDs' ``additionalPrinterColumns`` (Phase, Provider,
Ready ...) are only visible if the server renders them.  The JSONPath subset covers what
printer columns use: ``.a.b``, ``.a[0]``, ``.a[*]``, ``['a.b']`` and filters like
``[?(@.type=="Ready")]``.  Built-in kinds get the Name/Age columns (pods also Ready,
Status, Restarts, IP, Node), not each kind's full printer as on the server.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from agent_sessions.dev.resources import ResourceType

_NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_POD_COLUMNS = (
    {"name": "Ready", "type": "string", "description": "ready/total containers"},
    {"name": "Status", "type": "string", "description": "The pod phase."},
    {"name": "Restarts", "type": "string", "description": "Container restarts."},
    _AGE,
    {"name": "IP", "type": "string", "priority": 1, "jsonPath": ".status.podIP"},
    {"name": "Node", "type": "string", "priority": 1, "jsonPath": ".spec.nodeName"},
)
_STEP = re.compile(r"""\.([A-Za-z0-9_$-]+)|\[(\d+|\*)\]|\['([^']*)'\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)\]""")


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def wants_metadata(accept: str) -> bool:
    """Whether the client asked for objects as `PartialObjectMetadata` (metadata informers)."""
    return "as=PartialObjectMetadata" in accept


def partial(obj: dict) -> dict:
    """`obj` as the API server sends it to a client asking for its metadata alone."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def jsonpath(obj: Any, expression: str) -> list[Any]:
    """All values ``expression`` selects in ``obj`` (the printer-column subset)."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    expression = expression.removeprefix("$")
    values, position = [obj], 0
    while position < len(expression):
        match = _STEP.match(expression, position)
        if match is None:
            return []
        position = match.end()
        field, index, quoted, filter_path, operator, *literals = match.groups()
        following: list[Any] = []
        for value in values:
            key = field if field is not None else quoted
            if key is not None and isinstance(value, dict) and key in value:
                following.append(value[key])
            elif index == "*":
                following.extend(value if isinstance(value, list) else
                                 value.values() if isinstance(value, dict) else [])
            elif index is not None and isinstance(value, list) and int(index) < len(value):
                following.append(value[int(index)])
            elif filter_path is not None and isinstance(value, list):
                wanted = next(lit for lit in literals if lit is not None)
                for item in value:
                    actual = jsonpath(item, "." + filter_path)
                    shown = _text(actual[0]) if actual else None
                    if (shown == wanted) == (operator == "=="):
                        following.append(item)
        values = following
    return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    seconds = int(seconds)
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def _age(timestamp: Any) -> str:
    try:
        then = datetime.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def _columns(rtype: ResourceType) -> list[dict]:
    if rtype.custom:
        return [dict(c) for c in rtype.printer_columns] or [dict(_AGE)]
    if rtype.group_resource == ("", "pods"):
        return [dict(c) for c in _POD_COLUMNS]
    return [dict(_AGE)]


def _pod_cells(pod: dict, name: str) -> Any:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    if name == "Ready":
        return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"
    if name == "Status":
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            return "Terminating"
        for status in statuses:
            reason = (status.get("state") or {}).get("waiting", {}).get("reason") or (
                status.get("state") or {}).get("terminated", {}).get("reason")
            if reason:
                return reason
        return (pod.get("status") or {}).get("phase") or "Unknown"
    return str(sum(int(s.get("restartCount") or 0) for s in statuses))


def _cell(rtype: ResourceType, obj: dict, column: dict) -> Any:
    if rtype.group_resource == ("", "pods") and "jsonPath" not in column:
        return _pod_cells(obj, column["name"])
    values = jsonpath(obj, column["jsonPath"])
    if not values:
        return None
    if column.get("type") == "date":
        return _age(values[0])
    if column.get("type") in ("integer", "number", "boolean") and len(values) == 1:
        return values[0]
    return ",".join(_text(v) for v in values)


def _row_object(obj: dict, include_object: str) -> dict | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return partial(obj)


def table(rtype: ResourceType, objects: list[dict], *, resource_version: str = "",
          include_object: str = "Metadata", with_columns: bool = True) -> dict:
    """The Table the API server would send for ``objects`` of ``rtype``."""
    columns = _columns(rtype)
    definitions = [_NAME_COLUMN] + [
        {"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
         "description": c.get("description", ""), "priority": int(c.get("priority", 0))}
        for c in columns]
    rows = []
    for obj in objects:
        row: dict = {"cells": [obj["metadata"]["name"]] + [_cell(rtype, obj, c) for c in columns]}
        shown = _row_object(obj, include_object)
        if shown is not None:
            row["object"] = shown
        rows.append(row)
    result = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
              "metadata": {"resourceVersion": resource_version}, "rows": rows}
    result["columnDefinitions"] = definitions if with_columns else None
    return result
