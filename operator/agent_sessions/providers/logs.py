"""Bounding a log to what `status.logs.tail` may hold (≤ 50 lines, ≤ 8 KiB), secrets removed.

Every provider produces its log tail the same way: redact the whole text it fetched, then keep
the end of it, cut on line boundaries. The order matters (see `redaction`), and so does the
cut: a byte limit must never split a UTF-8 character (the status would not be valid UTF-8) and
should not split a line when whole lines fit.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent_sessions.api import constants as c

from .redaction import redact


class LogTail(str):
    """A bounded log tail: the text itself (a `str`), plus whether older output was cut off."""

    truncated: bool

    def __new__(cls, text: str = "", truncated: bool = False) -> LogTail:
        tail = super().__new__(cls, text)
        tail.truncated = truncated
        return tail

    def __repr__(self) -> str:
        return f"LogTail({str(self)!r}, truncated={self.truncated})"


def tail(text: str, max_lines: int = c.MAX_LOG_TAIL_LINES, max_bytes: int = c.MAX_LOG_TAIL_BYTES) -> tuple[str, bool]:
    """The end of `text`: at most `max_lines` lines and `max_bytes` UTF-8 bytes; and whether
    anything was cut.

    Whole lines are kept, newest last; older lines are dropped until both bounds hold. Only when
    the newest line alone is longer than `max_bytes` is it cut, keeping its end, at a character
    boundary. A final newline does not count as an extra (empty) line.
    """
    if not text:
        return "", False
    if max_lines <= 0 or max_bytes <= 0:
        return "", True
    lines = _lines(text)
    kept: list[str] = []
    size = 0
    for line in reversed(lines[-max_lines:]):
        encoded = len(line.encode())
        if size + encoded > max_bytes:
            break
        kept.append(line)
        size += encoded
    if not kept:
        return _last_bytes(lines[-1], max_bytes), True
    kept.reverse()
    return "".join(kept), len(kept) < len(lines)


def bounded_log(
    text: str,
    secret_values: Iterable[str] = (),
    *,
    max_lines: int = c.MAX_LOG_TAIL_LINES,
    max_bytes: int = c.MAX_LOG_TAIL_BYTES,
    truncated: bool = False,
) -> LogTail:
    """Redact `text`, then keep its tail. `truncated` says the text was already cut at its source."""
    kept, cut = tail(redact(text, secret_values), max_lines, max_bytes)
    return LogTail(kept, truncated or cut)


def _lines(text: str) -> list[str]:
    """Lines with their `\n` (only `\n` separates lines; `\r` stays part of its line)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _last_bytes(line: str, max_bytes: int) -> str:
    data = line.encode()[-max_bytes:]
    start = 0
    while start < len(data) and (data[start] & 0b1100_0000) == 0b1000_0000:
        start += 1  # a UTF-8 continuation byte: the character started before the cut
    return data[start:].decode()
