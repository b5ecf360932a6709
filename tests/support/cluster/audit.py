"""The real apiserver's audit log (JSON lines, policy ``level: Metadata``) as request records.

It is how a test counts an operator's writes on a real server: remember ``offset()``, run the
scenario, then ``read_since(path, offset)`` returns only the requests made in between.
Only ``ResponseComplete`` events are kept (one per finished request; long-running requests such
as watches also log ``ResponseStarted``, which would count them twice).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Iterable

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class AuditRecord:
    verb: str
    """The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection."""
    method: str
    """The HTTP method the verb came from (GET, POST, PUT, PATCH, DELETE)."""
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    code: int
    user: str
    user_agent: str
    path: str
    """The request URI, query string included."""
    group: str | None = None
    audit_id: str = ""
    decision: str = ""
    """The authorizer's decision (``allow``/``forbid``), from the event's annotations."""
    received: float = 0.0
    """When the apiserver received the request (epoch seconds)."""
    authorization_reason: str = ""
    """Why the authorizer decided so (e.g. the RBAC binding that allowed it), if it said."""

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def target(self) -> str:
        """``resource`` or ``resource/subresource`` (the request path for non-resource URLs)."""
        if self.resource is None:
            return self.path.split("?", 1)[0]
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


_METHODS = {"get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT",
            "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE"}


def parse_event(event: dict) -> AuditRecord | None:
    """One audit event → a record; None unless it is a ``ResponseComplete`` event."""
    if event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    verb = event.get("verb", "")
    user = event.get("user") or {}
    return AuditRecord(
        verb=verb,
        method=_METHODS.get(verb, verb.upper()),
        resource=ref.get("resource"),
        subresource=ref.get("subresource"),
        namespace=ref.get("namespace"),
        name=ref.get("name"),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        user=user.get("username", ""),
        user_agent=event.get("userAgent", ""),
        path=event.get("requestURI", ""),
        group=ref.get("apiGroup"),
        audit_id=event.get("auditID", ""),
        decision=(event.get("annotations") or {}).get("authorization.k8s.io/decision", ""),
        received=_epoch(event.get("requestReceivedTimestamp")),
        authorization_reason=(event.get("annotations") or {}).get("authorization.k8s.io/reason", ""),
    )


def _epoch(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def offset(path: Path) -> int:
    """The audit log's current end: pass it to :func:`read_since` to skip what came before."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return 0


def _records(stream: BinaryIO) -> Iterable[AuditRecord]:
    for line in stream:
        if not line.endswith(b"\n"):
            break  # the apiserver is still writing this line
        record = parse_event(json.loads(line))
        if record is not None:
            yield record


def _skip_to_line_start(stream: BinaryIO, start: int) -> None:
    """Positions ``stream`` at the first whole line at or after byte ``start``.

    An offset taken while the apiserver was writing an event can fall inside that line (the
    file grows page by page during one write): the rest of that line is a request logged
    before the offset, so it is skipped rather than parsed from its middle.
    """
    if start <= 0:
        return
    stream.seek(start - 1)
    if stream.read(1) != b"\n":
        stream.readline()


def read_since(path: Path, start: int = 0) -> list[AuditRecord]:
    """The records logged after byte ``start`` (see :func:`offset`)."""
    try:
        with open(path, "rb") as stream:
            _skip_to_line_start(stream, start)
            return list(_records(stream))
    except FileNotFoundError:
        return []


class AuditLog:
    """A cursor over one audit log: ``reset()`` then ``records()`` → only newer requests."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.start = 0

    def reset(self) -> None:
        self.start = offset(self.path)

    def records(self, *, user: str | None = None, writes_only: bool = False) -> list[AuditRecord]:
        return [r for r in read_since(self.path, self.start)
                if (user is None or r.user == user) and (not writes_only or r.is_write)]

    def wait_for_audit_id(self, audit_id: str, timeout: float = 5.0) -> None:
        """Blocks until the request with ``audit_id`` (its response's ``Audit-Id`` header)
        is in the log: the apiserver writes an event after answering."""
        deadline = time.monotonic() + timeout
        while not any(r.audit_id == audit_id for r in self.records()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"audit event {audit_id} not logged within {timeout}s")
            time.sleep(0.02)


def verb_table(records: Iterable[AuditRecord]) -> str:
    """A table of counts per verb, resource[/subresource] and response code, e.g. to print
    an operator's writes: ``print(verb_table(r for r in records if r.is_write))``."""
    counts = Counter((r.verb, r.target, r.code) for r in records)
    rows = [("VERB", "RESOURCE", "CODE", "COUNT")] + [
        (verb, target, str(code), str(n))
        for (verb, target, code), n in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join(lines)


def print_verb_table(records: Iterable[AuditRecord]) -> None:
    print(verb_table(records))
