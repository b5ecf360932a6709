"""Where the reference server keeps its sessions: in memory (default), a JSON file or SQLite.

With a state file, a restarted server knows its sessions again — ids, configurations,
workspaces, whether each should run — and its counters (`creates` keeps counting), which is what
an operator-restart or platform-restart test needs. Processes are not state: a restarted server
starts the sessions that should run again, with their workspaces.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

DESIRED_RUNNING = "Running"
DESIRED_STOPPED = "Stopped"


@dataclass
class SessionRecord:
    """One session as the platform remembers it."""

    id: str
    body: dict[str, Any]
    """The PUT body it was created with."""
    created_at: str
    workspace: str
    desired: str = DESIRED_RUNNING
    """`Running` or `Stopped`: what `PUT`/`:start`/`:stop` asked for last."""
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> dict[str, Any]:
        session = self.body.get("session")
        return session if isinstance(session, dict) else {}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


class SessionStore(Protocol):
    def load(self) -> tuple[dict[str, SessionRecord], dict[str, int]]:
        """Every session, and the counters."""
        ...

    def save(self, record: SessionRecord, counters: dict[str, int]) -> None: ...

    def remove(self, session_id: str, counters: dict[str, int]) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Nothing survives the process."""

    def load(self) -> tuple[dict[str, SessionRecord], dict[str, int]]:
        return {}, {}

    def save(self, record: SessionRecord, counters: dict[str, int]) -> None:
        pass

    def remove(self, session_id: str, counters: dict[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonStore:
    """One JSON document, rewritten atomically (temporary file + rename) on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, SessionRecord] = {}

    def load(self) -> tuple[dict[str, SessionRecord], dict[str, int]]:
        if not self.path.exists():
            return {}, {}
        document = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        self._records = {sid: SessionRecord.from_json(data) for sid, data in (document.get("sessions") or {}).items()}
        return dict(self._records), dict(document.get("counters") or {})

    def save(self, record: SessionRecord, counters: dict[str, int]) -> None:
        self._records[record.id] = record
        self._write(counters)

    def remove(self, session_id: str, counters: dict[str, int]) -> None:
        self._records.pop(session_id, None)
        self._write(counters)

    def close(self) -> None:
        pass

    def _write(self, counters: dict[str, int]) -> None:
        document = {"sessions": {sid: asdict(r) for sid, r in self._records.items()}, "counters": counters}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, sort_keys=True)
        os.replace(temporary, self.path)


class SqliteStore:
    """Two tables: `sessions(id, document)` and `counters(name, value)`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, document TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    def load(self) -> tuple[dict[str, SessionRecord], dict[str, int]]:
        records = {sid: SessionRecord.from_json(json.loads(doc))
                   for sid, doc in self._db.execute("SELECT id, document FROM sessions")}
        counters = dict(self._db.execute("SELECT name, value FROM counters"))
        return records, counters

    def save(self, record: SessionRecord, counters: dict[str, int]) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO sessions (id, document) VALUES (?, ?)",
                             (record.id, json.dumps(asdict(record))))
            self._save_counters(counters)

    def remove(self, session_id: str, counters: dict[str, int]) -> None:
        with self._db:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            self._save_counters(counters)

    def close(self) -> None:
        self._db.close()

    def _save_counters(self, counters: dict[str, int]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", list(counters.items()))


def open_store(path: str | Path | None) -> SessionStore:
    """The store for `--state`: none → memory; `*.json` → JSON; `*.sqlite`, `*.sqlite3`, `*.db` → SQLite."""
    if path is None or str(path) == "":
        return MemoryStore()
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".json":
        return JsonStore(file)
    if suffix in (".sqlite", ".sqlite3", ".db"):
        return SqliteStore(file)
    raise ValueError(f"--state {path}: use a .json file or a .sqlite/.sqlite3/.db file")
