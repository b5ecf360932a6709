"""The session's history: frames appended to `<workspace>/.agent-session/history.jsonl`.

One JSON frame per line, flushed per line (not fsynced: a crash of the node may lose the last
frames, a crash of the bridge does not). The file is the source of truth across restarts and
stop/resume (§7): on start the bridge reads it back, so `seq` continues where it stopped and
`after_seq` keeps working for clients that were following the session.

A bridge killed mid-write can leave a partial last line; it is cut off on load, so the next
frame starts on a line of its own. Unreadable lines are skipped with a warning rather than
wedging the session.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from agent_sessions.wire.frames import Frame

logger = logging.getLogger(__name__)


class HistoryStore:
    """Frames in order, in memory and on disk; the only place that assigns `seq`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._frames: list[Frame] = []
        self._seqs: list[int] = []
        self._file: IO[str] | None = None

    @classmethod
    def open(cls, path: Path) -> HistoryStore:
        """Read what an earlier bridge wrote and get ready to append."""
        store = cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            store._load()
        store._file = path.open("a", encoding="utf-8")
        return store

    def _load(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            logger.warning("history: dropping a partial last line (%d bytes) of %s", len(data) - cut, self.path)
            with self.path.open("r+b") as handle:
                handle.truncate(cut)
            data = data[:cut]
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
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
        """Record a frame with the next seq and return it."""
        frame: Frame = {"seq": self.last_seq + 1, "event": event, "time": time, **body}
        line = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        self._frames.append(frame)
        self._seqs.append(frame["seq"])
        return frame

    def after(self, seq: int, limit: int | None = None) -> list[Frame]:
        """Frames with a seq greater than `seq`, oldest first, at most `limit` of them."""
        start = bisect.bisect_right(self._seqs, seq)
        end = len(self._frames) if limit is None else min(len(self._frames), start + limit)
        return self._frames[start:end]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
