"""Folding the agent's ACP `session_info_update` notifications into `status.sessionInfo` (§7).

ACP sends partial updates: a field that is omitted stays as it was, a field set to `null` is
cleared. `_meta` is merged key by key: `{"k": null}` removes key `k`, `"_meta": null` clears
it all. Updates apply in order, and the agent's `updatedAt` is kept exactly as given (it is the
agent's clock, not ours).

Status is stored in etcd and shown by `kubectl`, so it is bounded: an update that would make the
title or `_meta` too large is rejected as a whole, with a reason the operator reports — never
truncated silently, never half applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.api.session import SessionInfoStatus

_FIELDS = {"title": "title", "updatedAt": "updated_at", "_meta": "meta"}


@dataclass(frozen=True)
class RejectedUpdate:
    """An update that was not applied, and why."""

    index: int
    reason: str

    def __str__(self) -> str:
        return f"session_info_update #{self.index} rejected: {self.reason}"


@dataclass(frozen=True)
class FoldResult:
    info: SessionInfoStatus
    rejected: tuple[RejectedUpdate, ...] = ()


def meta_size(meta: Mapping[str, Any]) -> int:
    """Size of `_meta` as stored: compact JSON, UTF-8 bytes."""
    return len(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode())


def merge_meta(current: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`_meta` merge: `None` patch clears all; `{"k": None}` removes `k`; other keys replace."""
    if patch is None:
        return None
    merged = dict(current or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged or None


def _problem(update: Mapping[str, Any]) -> str | None:
    """Why an update cannot be applied on its own terms (types), or None."""
    if not isinstance(update, Mapping):
        return f"expected an object, got {type(update).__name__}"
    title = update.get("title")
    if title is not None and not isinstance(title, str):
        return f"title must be a string or null, got {type(title).__name__}"
    if title is not None and len(title) > c.MAX_TITLE_LENGTH:
        return f"title is {len(title)} characters long; at most {c.MAX_TITLE_LENGTH} are allowed"
    updated_at = update.get("updatedAt")
    if updated_at is not None and not isinstance(updated_at, str):
        return f"updatedAt must be a string or null, got {type(updated_at).__name__}"
    if updated_at is not None and len(updated_at) > 64:
        return "updatedAt is longer than 64 characters"
    meta = update.get("_meta")
    if meta is not None and not isinstance(meta, Mapping):
        return f"_meta must be an object or null, got {type(meta).__name__}"
    return None


def apply_update(info: SessionInfoStatus, update: Mapping[str, Any]) -> SessionInfoStatus:
    """Apply one update; raises ValueError (with the reason) if it is invalid or oversize."""
    problem = _problem(update)
    if problem:
        raise ValueError(problem)
    changes: dict[str, Any] = {}
    for wire, attr in _FIELDS.items():
        if wire not in update:
            continue
        if wire == "_meta":
            merged = merge_meta(info.meta, update[wire])
            if merged is not None:
                if len(merged) > c.MAX_META_PROPERTIES:
                    raise ValueError(
                        f"_meta would have {len(merged)} keys; at most {c.MAX_META_PROPERTIES} are allowed"
                    )
                size = meta_size(merged)
                if size > c.MAX_META_BYTES:
                    raise ValueError(f"_meta would be {size} bytes; at most {c.MAX_META_BYTES} are allowed")
            changes[attr] = merged
        else:
            changes[attr] = update[wire]
    return info.model_copy(update=changes)


def fold_session_info(
    current: SessionInfoStatus | None, updates: Iterable[Mapping[str, Any]]
) -> FoldResult:
    """Apply `session_info_update`s in order. Rejected updates are skipped and reported."""
    info = current.model_copy(deep=True) if current is not None else SessionInfoStatus()
    rejected: list[RejectedUpdate] = []
    for index, update in enumerate(updates):
        try:
            info = apply_update(info, update)
        except ValueError as exc:
            rejected.append(RejectedUpdate(index, str(exc)))
    return FoldResult(info=info, rejected=tuple(rejected))
