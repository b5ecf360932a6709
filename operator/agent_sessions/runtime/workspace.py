"""Where the bridge keeps its state in the session's workspace (kept across stop/resume).

`<workspace>/.agent-session/` holds `history.jsonl` (the frames, see `history`) and
`state.json`: the ACP session id, so that a resumed session asks the agent to `session/load`
the conversation it had instead of starting a new one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_DIR = ".agent-session"
HISTORY_FILE = "history.jsonl"
STATE_FILE = "state.json"


def state_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR


def history_path(workspace: Path) -> Path:
    return state_dir(workspace) / HISTORY_FILE


@dataclass
class WorkspaceState:
    acp_session_id: str | None = None
    protocol: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"acpSessionId": self.acp_session_id, "protocol": self.protocol}


def load_state(workspace: Path) -> WorkspaceState:
    path = state_dir(workspace) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return WorkspaceState()
    except ValueError:
        logger.warning("state: %s is unreadable; starting a new ACP session", path)
        return WorkspaceState()
    session_id = data.get("acpSessionId") if isinstance(data, dict) else None
    protocol = data.get("protocol") if isinstance(data, dict) else None
    return WorkspaceState(
        acp_session_id=session_id if isinstance(session_id, str) and session_id else None,
        protocol=protocol if isinstance(protocol, str) else None,
    )


def save_state(workspace: Path, state: WorkspaceState) -> None:
    """Write state.json atomically: a reader never sees half a file."""
    directory = state_dir(workspace)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
