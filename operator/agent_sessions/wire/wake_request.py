"""A wake request from the gateway to the operator: a signed Event (DESIGN §4 wake-on-message, §11).

The gateway may not write AgentSessions (issue 10): to wake a session stopped for idleness it
creates a core/v1 Event about the session — reason `WakeRequested`, label
`agentsession.dev/wake-request`, annotations with the time it asked and an HMAC of
(namespace, name, uid, time) under the runtime key only the operator and gateway hold. Creating
Events grants nothing else: it cannot change any object, and Events expire on their own (the API
server's event TTL, one hour by default), so requests need no clean-up.

The operator watches Events with that label and acts on one only if it is `valid_wake_request`:
the signature checks (whoever else may create Events cannot wake sessions), it names the session
by its current uid (not a deleted namesake), and it is recent (`MAX_AGE_SECONDS`: an Event listed
again after an operator restart is not a new request). It then records the time in
`status.wakeRequest`; a request not newer than that has been acted on already.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from agent_sessions.api import constants as c

from .credentials import wake_signature, wake_signature_valid

MAX_AGE_SECONDS: Final = 600.0
"""A request older than this is ignored (the gateway waits at most its wake timeout, 120 s by
default, for the session to come up)."""
MAX_CLOCK_SKEW_SECONDS: Final = 60.0
"""A request dated further in the future than this is ignored."""
GATEWAY_COMPONENT: Final = "agent-sessions-gateway"

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
"""The form `wake_timestamp` writes (the only one a wake request Event may carry)."""
_ANY_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
_LABEL_VALUE_END = re.compile(r"[^A-Za-z0-9]+$")


def wake_timestamp(ns_since_epoch: int) -> str:
    """RFC 3339 in UTC with nanoseconds, e.g. `2025-01-02T03:04:05.123456789Z`: fixed width, so two
    values compare in time order as strings, and two wakes never carry the same value."""
    seconds, nanos = divmod(ns_since_epoch, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{nanos:09d}Z"


def parse_wake_timestamp(text: Any) -> float | None:
    """Epoch seconds of an RFC 3339 value (any fraction up to nanoseconds, `Z` or an offset), else None."""
    if not isinstance(text, str):
        return None
    match = _ANY_RFC3339.match(text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{whole}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction.ljust(9, "0")) / 1e9 if fraction else 0.0)


@dataclass(frozen=True)
class WakeRequest:
    namespace: str
    name: str
    uid: str
    requested_at: str


def build_wake_event(session: dict[str, Any], requested_at: str, key: bytes, *, requester: str = "") -> dict[str, Any]:
    """The Event the gateway creates to ask for `session` to be woken."""
    meta = session["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    label = _LABEL_VALUE_END.sub("", name[:63]) or "session"
    who = f" for a message from {requester}" if requester else " for a message"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name[:200]}.wake.{secrets.token_hex(6)}",
            "namespace": namespace,
            "labels": {c.LABEL_WAKE_REQUEST: label},
            "annotations": {
                c.ANNOTATION_WAKE_REQUESTED_AT: requested_at,
                c.ANNOTATION_WAKE_SIGNATURE: wake_signature(key, namespace, name, uid, requested_at),
            },
        },
        "involvedObject": {
            "apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "namespace": namespace, "name": name, "uid": uid,
        },
        "type": c.EVENT_TYPE_NORMAL,
        "reason": c.EVENT_WAKE_REQUESTED,
        "message": f"the gateway asked for the session to be woken{who}"[:1024],
        "source": {"component": GATEWAY_COMPONENT},
        "reportingComponent": GATEWAY_COMPONENT,
        "reportingInstance": GATEWAY_COMPONENT,
        "firstTimestamp": requested_at[:19] + "Z",
        "lastTimestamp": requested_at[:19] + "Z",
        "count": 1,
    }


def valid_wake_request(event: dict[str, Any], key: bytes, *, current_uid: str | None, now: float) -> WakeRequest | str:
    """The request `event` carries, or why it is ignored (a short text for the operator's log)."""
    meta = event.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    involved = event.get("involvedObject") or {}
    if not isinstance(annotations, dict) or not isinstance(involved, dict):
        return "malformed"
    if involved.get("kind") != c.SESSION_KIND or involved.get("apiVersion") != c.API_VERSION:
        return "not about an AgentSession"
    namespace, name, uid = involved.get("namespace"), involved.get("name"), involved.get("uid")
    if not all(isinstance(v, str) and v for v in (namespace, name, uid)) or namespace != meta.get("namespace"):
        return "does not name a session of its own namespace with its uid"
    requested_at = annotations.get(c.ANNOTATION_WAKE_REQUESTED_AT)
    asked = parse_wake_timestamp(requested_at) if isinstance(requested_at, str) and _RFC3339.match(requested_at) else None
    if asked is None:
        return "no valid request time"
    if not wake_signature_valid(key, namespace, name, uid, requested_at, annotations.get(c.ANNOTATION_WAKE_SIGNATURE) or ""):
        return "bad signature"
    if current_uid is None or uid != current_uid:
        return "names a session that no longer exists"
    if now - asked > MAX_AGE_SECONDS or asked - now > MAX_CLOCK_SKEW_SECONDS:
        return "too old or dated in the future"
    return WakeRequest(namespace, name, uid, requested_at)


def newer(requested: str, acted_on: str | None) -> bool:
    """Whether the wake value `requested` asks for more than the one recorded in
    `status.wakeRequest`: a different value, and a later time when both are times (an annotation
    may hold any value; a request dated before the last one acted on was acted on by that one)."""
    if not acted_on:
        return True
    if requested == acted_on:
        return False
    if _RFC3339.match(requested) and _RFC3339.match(acted_on):
        return requested > acted_on  # fixed width: exact to the nanosecond
    mine, theirs = parse_wake_timestamp(requested), parse_wake_timestamp(acted_on)
    return mine is None or theirs is None or mine > theirs
