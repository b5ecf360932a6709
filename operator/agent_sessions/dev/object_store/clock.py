"""Timestamps in the server's format (RFC 3339, whole seconds, UTC)."""

from __future__ import annotations

import datetime

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIMESTAMP_FORMAT)


def later(timestamp: str | None, seconds: int) -> str:
    """``timestamp`` (None: now) moved by ``seconds``, in the server's format."""
    if timestamp is None:
        when = datetime.datetime.now(datetime.UTC)
    else:
        when = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    return (when + datetime.timedelta(seconds=seconds)).strftime(TIMESTAMP_FORMAT)
