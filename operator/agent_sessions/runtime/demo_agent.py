"""The demo agent: a real ACP agent (the SDK's agent side, over stdio) for samples and tests.

Per prompt it sends, in this order: a `session_info_update` (the title from the first prompt,
on the first turn only; `_meta.turn` and `updatedAt` every turn), a `tool_call` to a fake
"count words" tool and its completed `tool_call_update`, the echo reply "You said: <text>" in
at least three `agent_message_chunk`s, and a `usage_update`; the prompt response carries the
turn's token usage (the schema's `PromptResponse.usage`). Token counts are word counts: it is a
demo, not a tokenizer.

Sessions are remembered in `<cwd>/.demo-agent/<session id>.json` (title and turn counter), so
`session/load` after a restart continues the turn count. `session/load` replays no messages:
the runtime bridge keeps the conversation's history itself, and a replay would only repeat it.

Environment:
* `DEMO_AGENT_CHUNK_DELAY` — seconds between streamed chunks (default 0.05);
* `DEMO_AGENT_REQUIRE_AUTH=1` — advertise an auth method and refuse `session/new` and
  `session/load` with -32000 "Authentication required" until `authenticate` is called;
* `DEMO_AGENT_CRASH_ON=<text>` — exit with code 3 (and a line on stderr) when a prompt contains it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, run_agent, start_tool_call, text_block, tool_content, update_tool_call
from acp.helpers import update_agent_message_text
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    AuthMethodAgent,
    Implementation,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PromptResponse,
    SessionInfoUpdate,
    Usage,
    UsageUpdate,
)

from agent_sessions import __version__

logger = logging.getLogger("agent_sessions.demo_agent")

AGENT_NAME = "agent-sessions-demo"
TITLE_LENGTH = 40
CONTEXT_WINDOW = 200_000
MIN_CHUNKS = 3
STATE_DIR = ".demo-agent"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass
class DemoSession:
    session_id: str
    cwd: Path
    title: str | None = None
    turn: int = 0
    tokens: int = 0

    def path(self) -> Path:
        return self.cwd / STATE_DIR / f"{self.session_id}.json"

    def save(self) -> None:
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"title": self.title, "turn": self.turn, "tokens": self.tokens}), encoding="utf-8")

    @classmethod
    def load(cls, session_id: str, cwd: Path) -> DemoSession | None:
        if not _SESSION_ID.match(session_id):
            return None
        session = cls(session_id, cwd)
        try:
            data = json.loads(session.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        session.title = data.get("title")
        session.turn = int(data.get("turn") or 0)
        session.tokens = int(data.get("tokens") or 0)
        return session


def title_from(text: str) -> str:
    """The first line of the first prompt, at most 40 characters (an ellipsis marks a cut)."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def split_reply(reply: str, parts: int = MIN_CHUNKS) -> list[str]:
    """`reply` in at least `parts` non-empty pieces (fewer only if it is shorter than that)."""
    words = re.findall(r"\S+\s*", reply)
    parts = max(1, min(max(parts, len(words) // 3), len(reply)))
    if len(words) >= parts:
        size = -(-len(words) // parts)
        return ["".join(words[i : i + size]) for i in range(0, len(words), size)]
    size = -(-len(reply) // parts)
    return [reply[i : i + size] for i in range(0, len(reply), size)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DemoAgent:
    """Implements the SDK's `acp.Agent` protocol (the methods the demo needs)."""

    def __init__(self, *, chunk_delay: float = 0.05, require_auth: bool = False, crash_on: str | None = None) -> None:
        self._chunk_delay = chunk_delay
        self._require_auth = require_auth
        self._authenticated = False
        self._crash_on = crash_on or None
        self._sessions: dict[str, DemoSession] = {}
        self._cancelled: dict[str, asyncio.Event] = {}
        self._conn: Any = None

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] = os.environ) -> DemoAgent:
        return cls(
            chunk_delay=float(env.get("DEMO_AGENT_CHUNK_DELAY") or 0.05),
            require_auth=env.get("DEMO_AGENT_REQUIRE_AUTH", "").lower() in ("1", "true", "yes"),
            crash_on=env.get("DEMO_AGENT_CRASH_ON") or None,
        )

    def on_connect(self, conn: Any) -> None:
        self._conn = conn

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None, **kwargs: Any
    ) -> InitializeResponse:
        auth_methods = (
            [AuthMethodAgent(id="demo-login", name="Demo login", description="Any authenticate call succeeds (demo).")]
            if self._require_auth
            else []
        )
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(load_session=True),
            auth_methods=auth_methods,
            agent_info=Implementation(name=AGENT_NAME, title="Agent Sessions demo agent", version=__version__),
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> AuthenticateResponse:
        self._authenticated = True
        return AuthenticateResponse()

    def _check_auth(self) -> None:
        if self._require_auth and not self._authenticated:
            raise RequestError.auth_required({"authMethods": ["demo-login"]})

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> NewSessionResponse:
        self._check_auth()
        session = DemoSession(uuid.uuid4().hex, Path(cwd))
        session.save()
        self._sessions[session.session_id] = session
        return NewSessionResponse(session_id=session.session_id)

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: Any = None, **kwargs: Any
    ) -> LoadSessionResponse:
        self._check_auth()
        session = self._sessions.get(session_id) or DemoSession.load(session_id, Path(cwd))
        if session is None:
            raise RequestError.resource_not_found(f"session:{session_id}")
        self._sessions[session_id] = session
        return LoadSessionResponse()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        event = self._cancelled.get(session_id)
        if event is not None:
            event.set()

    async def _send(self, session_id: str, update: Any) -> None:
        await self._conn.session_update(session_id=session_id, update=update)

    async def _pause(self, cancelled: asyncio.Event) -> bool:
        """Wait one chunk delay; True when the turn was cancelled meanwhile."""
        if self._chunk_delay > 0:
            try:
                await asyncio.wait_for(cancelled.wait(), timeout=self._chunk_delay)
            except asyncio.TimeoutError:
                pass
        return cancelled.is_set()

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        session = self._sessions.get(session_id)
        if session is None:
            raise RequestError.invalid_params({"sessionId": session_id, "reason": "unknown session"})
        text = "\n".join(block.text for block in prompt if getattr(block, "type", None) == "text")
        if self._crash_on and self._crash_on in text:
            sys.stderr.write(f"demo-agent: crashing on purpose: the prompt contains {self._crash_on!r}\n")
            sys.stderr.flush()
            os._exit(3)
        cancelled = self._cancelled[session_id] = asyncio.Event()
        session.turn += 1
        first_turn = session.title is None
        if first_turn:
            session.title = title_from(text) or "Untitled session"
        title = {"title": session.title} if first_turn else {}
        await self._send(
            session_id,
            SessionInfoUpdate(
                session_update="session_info_update", updated_at=_now(), field_meta={"turn": session.turn}, **title
            ),
        )

        call_id = f"count-words-{session.turn}"
        words = len(text.split())
        await self._send(
            session_id,
            start_tool_call(call_id, "Count words", kind="other", status="in_progress", raw_input={"text": text}),
        )
        await self._send(
            session_id,
            update_tool_call(
                call_id,
                status="completed",
                raw_output={"words": words},
                content=[tool_content(text_block(f"{words} word{'' if words == 1 else 's'}"))],
            ),
        )

        reply = f"You said: {text}"
        for piece in split_reply(reply):
            if await self._pause(cancelled):
                return self._end(session, "cancelled", words, 0)
            await self._send(session_id, update_agent_message_text(piece))
        output_tokens = len(reply.split())
        session.tokens += words + output_tokens
        usage = UsageUpdate(session_update="usage_update", used=session.tokens, size=CONTEXT_WINDOW)
        await self._send(session_id, usage)
        return self._end(session, "end_turn", words, output_tokens)

    def _end(self, session: DemoSession, stop_reason: str, input_tokens: int, output_tokens: int) -> PromptResponse:
        self._cancelled.pop(session.session_id, None)
        session.save()
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens)
        return PromptResponse(stop_reason=stop_reason, usage=usage)


def main() -> int:
    """Serve ACP on stdin/stdout until stdin closes. Logs go to stderr: stdout is the protocol."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="demo-agent %(levelname)s: %(message)s")
    try:
        asyncio.run(run_agent(DemoAgent.from_env()))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
