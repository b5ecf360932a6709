"""The session's history: frames appended to `<workspace>/.agent-session/history.jsonl`.

One JSON frame per line, flushed per line (not fsynced: a crash of the node may lose the last
frames, a crash of the bridge does not). The file is the source of truth across restarts and
stop/resume (§7): on start the bridge reads it back, so `seq` continues where it stopped and
`after_seq` keeps working for clients that were following the session.

A bridge killed mid-write can leave a partial last line; it is cut off on load, so the next
frame starts on a line of its own. Unreadable lines are skipped with a warning rather than
wedging the session. Lines end at `\\n` only: an agent's text may hold U+2028 or U+0085, which
`str.splitlines` would take for line ends.

Appending never raises for what the agent sent or for the disk: a frame is made JSON-safe
(`wire.frames.json_safe`) when it could not otherwise be written as UTF-8, and a write that fails
(disk full, read-only file, anything) keeps the frame in memory with its seq, so the running turn
and its stream go on, and sets `write_error` until a write succeeds again. The bridge reports that
as unhealthy and ends the turn. The line after a failed write starts on a new line, so a partly
written frame cannot swallow the next one.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from agent_sessions.wire.frames import Frame, json_safe

logger = logging.getLogger(__name__)


class HistoryStore:
    """Frames in order, in memory and on disk; the only place that assigns `seq`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._frames: list[Frame] = []
        self._seqs: list[int] = []
        self._file: IO[bytes] | None = None
        self._persist = False
        self._line_open = False
        self.write_error: str | None = None
        """Why the last write failed (None once a write succeeds again)."""

    @classmethod
    def open(cls, path: Path) -> HistoryStore:
        """Read what an earlier bridge wrote and get ready to append. A history that cannot be
        read is not appended to (seq would restart under frames already there): the store keeps
        frames in memory and says why in `write_error`."""
        store = cls(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                store._load()
        except OSError as exc:
            store.write_error = f"cannot read {path}: {exc.strerror or exc}"
            logger.error("history: %s; frames are kept in memory only", store.write_error)
            return store
        store._persist = True
        store._open_for_append()
        return store

    def _open_for_append(self) -> bool:
        try:
            self._file = self.path.open("ab", buffering=0)
        except OSError as exc:
            self._failed(f"cannot open {self.path} for writing: {exc.strerror or exc}")
            return False
        return True

    def _failed(self, reason: str) -> None:
        if self.write_error != reason:
            logger.error("history: %s", reason)
        self.write_error = reason

    def _load(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            logger.warning("history: dropping a partial last line (%d bytes) of %s", len(data) - cut, self.path)
            with self.path.open("r+b") as handle:
                handle.truncate(cut)
            data = data[:cut]
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                frame = json.loads(raw.decode("utf-8", errors="replace"))
            except ValueError:
                logger.warning("history: skipping unreadable line %d of %s", number, self.path)
                continue
            seq = frame.get("seq") if isinstance(frame, dict) else None
            if not isinstance(seq, int) or (self._seqs and seq <= self._seqs[-1]):
                logger.warning("history: skipping line %d of %s (missing or out-of-order seq)", number, self.path)
                continue
            self._frames.append(frame)
            self._seqs.append(seq)

    @property
    def last_seq(self) -> int:
        return self._seqs[-1] if self._seqs else 0

    @property
    def last(self) -> Frame | None:
        return self._frames[-1] if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def append(self, event: str, body: dict[str, Any], *, time: str) -> Frame:
        """Record a frame with the next seq and return it (also when it could not be written:
        see `write_error`)."""
        frame: Frame = {"seq": self.last_seq + 1, "event": event, "time": time, **body}
        frame, line = _encoded(frame)
        self._frames.append(frame)
        self._seqs.append(frame["seq"])
        if self._persist:
            self._write(line)
        return frame

    def _write(self, line: bytes) -> None:
        if self._file is None and not self._open_for_append():
            return
        data = (b"\n" if self._line_open else b"") + line + b"\n"
        try:
            self._write_bytes(data)
        except Exception as exc:  # noqa: BLE001 - whatever the writer does, the session goes on
            self._line_open = True
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            self._failed(f"cannot write to {self.path}: {what}")
            return
        self._line_open = False
        if self.write_error is not None:
            logger.warning("history: writing to %s works again", self.path)
            self.write_error = None

    def _write_bytes(self, data: bytes) -> None:
        """Write all of `data` (an unbuffered file may take it in parts); raises what the file raises."""
        assert self._file is not None
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(errno.ENOSPC, "nothing could be written")
            view = view[written:]

    def after(self, seq: int, limit: int | None = None) -> list[Frame]:
        """Frames with a seq greater than `seq`, oldest first, at most `limit` of them."""
        start = bisect.bisect_right(self._seqs, seq)
        end = len(self._frames) if limit is None else min(len(self._frames), start + limit)
        return self._frames[start:end]

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def _encoded(frame: Frame) -> tuple[Frame, bytes]:
    """(frame, its line as UTF-8): the frame as given when it encodes, else made JSON-safe; a
    frame that still cannot be encoded (nested too deep) keeps its seq, event and time only."""
    try:
        return frame, _dumps(frame)
    except (ValueError, TypeError, RecursionError):
        pass
    try:
        safe = json_safe(frame)
        return safe, _dumps(safe)
    except (ValueError, TypeError, RecursionError) as exc:
        logger.warning("history: frame %d (%s) cannot be recorded: %s", frame["seq"], frame["event"], type(exc).__name__)
        kept: Frame = {key: json_safe(frame[key]) for key in ("seq", "event", "time")}
        kept["dropped"] = f"the frame could not be recorded ({type(exc).__name__})"
        return kept, _dumps(kept)


def _dumps(frame: Frame) -> bytes:
    """Strict JSON (no NaN) in UTF-8; raises UnicodeEncodeError (a ValueError) for a lone surrogate."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
