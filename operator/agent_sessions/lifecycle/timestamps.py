"""RFC 3339 timestamps as status carries them: UTC, whole seconds, `Z` suffix.

Status timestamps are compared, not just displayed: a converged session must produce a status
equal to the one it read (§8), so every timestamp the lifecycle writes goes through one
formatter, and one parser reads back whatever the operator, the gateway or a user wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime


def require_aware(moment: datetime) -> datetime:
    """Return `moment`, refusing naive datetimes: a naive `now` silently shifts every deadline."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {moment!r}")
    return moment


def format_timestamp(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (sub-second precision dropped, like `metav1.Time`)."""
    return require_aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> datetime | None:
    """The aware datetime written in `text`, or None when it is missing or unreadable.

    Unreadable values are ignored rather than raised: a hand-edited status must not wedge the
    reconciler, it merely loses the deadline that depended on it.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
