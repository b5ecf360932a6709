"""One session's runtime: the agent, its conversation, and everything the HTTP API reads.

The bridge serialises the conversation: one turn at a time (a second message while a turn runs
is refused with `session_busy` rather than queued — a queued message would be answered in a
context its sender never saw, and the caller can retry or cancel explicitly). Every frame goes
through `_record`, which assigns the seq, appends to history, folds session info, moves
`lastActivityTime`, and hands the frame to the running turn's listener.

A turn runs in its own task, not in the HTTP request: a client that disconnects mid-stream does
not cancel the agent's work, and the frames it missed are in history.

A message may carry a client `id`. A repeated id is the same message: it never starts another
turn, it is answered with the turn the first one started (live if it is still running, from
history otherwise). That makes delivery retryable — the operator delivers `spec.prompt` exactly
once by retrying with the same id until the bridge has it.

Every turn in history ends with `done` or `error`: a turn cut short by a killed bridge is closed
with an `error` frame (`runtime_restarted`) when the next bridge loads the history.

No input can wedge a session. Nothing on a turn's path raises into the HTTP layer or leaves
`_turn` set: history writes never raise (a failed one keeps the frame in memory), what the agent
sends is made JSON-safe before it is folded or recorded, and the runtime can end a turn itself
(`Turn.abort`), whatever the agent is doing — when history cannot be written (`history_unwritable`),
when the agent exited but its pipes stay open (`agent_exited`), when cancel could not reach the
agent (`cancel_failed`) or the agent ignored it for `cancel_grace` seconds (`cancel_timeout`).
An aborted turn ends with an `error` frame like any failed one, and the next message is accepted.

`/healthz` is the agent's health, unless the agent is fine and the runtime is not: history that
cannot be written (`HistoryUnwritable`, until a write succeeds again) or a turn the machinery
could not close properly (`TurnMachineryFailed`, until a turn ends normally again).

Both `/healthz` and `/v1/info` carry `agentStart` (see `health.AgentStart`): `starting` until the
agent's session is open, then `started`, or `failed` with the reason and message when the agent
never got there — the command cannot run, it exited (noticed at once, not when a start-up request
times out), `initialize` failed, or the session was refused (authentication required). A failed
start is final for this bridge: the operator restarts the session per its restart policy.

History can be waited on (`history_after_waiting`, the long poll behind `/v1/history?wait=`): a
reader with nothing new parks on one `asyncio.Event` that `_record` pulses (set, then cleared at
once: every parked reader is woken, none is woken twice), so a frame reaches every reader in one
loop iteration, a reader costs one future while it waits, and nothing polls. `close()` wakes them
all for good once the turn's last frame is recorded, so none holds the server's shutdown up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agent_sessions.api.session import SessionInfoStatus
from agent_sessions.lifecycle.session_info import apply_update, fold_session_info
from agent_sessions.lifecycle.timestamps import format_timestamp
from agent_sessions.wire import tracing
from agent_sessions.wire.frames import (
    EVENT_DONE,
    EVENT_ERROR,
    EVENT_SESSION_INFO_UPDATE,
    EVENT_USER_MESSAGE,
    TERMINAL_EVENTS,
    Frame,
    done_body,
    error_body,
    json_safe,
    message_id_of,
    turn_frames,
    turn_usage,
    update_body,
    update_kind,
    user_message_update,
)

from . import health as h
from .acp_link import AcpLink
from .agent_link import AgentLink, AgentStartFailed, OpenedSession, TurnFailed, TurnOutcome
from .agent_process import AgentProcess
from .history import HistoryStore
from .options import RuntimeOptions
from .output import output_mark
from .stdio_lines_link import StdioLinesLink
from .workspace import WorkspaceState, history_path, load_state, save_state

logger = logging.getLogger(__name__)

#: Frames that count in `messageCount`: each user message, and each agent reply (a turn that
#: ended with `done`, whatever its stop reason). A turn that failed counts its user message only.
COUNTED_EVENTS = (EVENT_USER_MESSAGE, EVENT_DONE)
#: How long an agent that exited mid-turn has for its link to report it before the runtime ends
#: the turn itself (a child that outlives it may keep the agent's stdout open).
AGENT_EXIT_GRACE = 3.0
#: How long a prompt the runtime abandoned has to unwind before the link counts as broken.
PROMPT_STOP_TIMEOUT = 2.0


class SessionBusy(Exception):
    """A turn is already running."""


class AgentUnavailable(Exception):
    """The agent cannot take a message (starting, refused, exited)."""

    def __init__(self, health: h.Health) -> None:
        super().__init__(health.message or health.reason)
        self.health = health


class TurnAborted(Exception):
    """The runtime ended the turn (see `Turn.abort`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Turn:
    """One prompt and its reply: frames from the user message to `done`/`error`."""

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id
        self.frames: list[Frame] = []
        self.finished = asyncio.Event()
        self.result: Frame | None = None
        self.abort_reason: tuple[str, str] | None = None
        self.abort_requested = asyncio.Event()
        self._abort_timer: asyncio.TimerHandle | None = None
        self._listeners: list[asyncio.Queue[Frame]] = []

    def abort(self, code: str, message: str) -> None:
        """End the turn from the runtime's side with an `error` frame (`code`), whatever the
        agent is doing. The first reason wins; a finished turn is left alone."""
        if self.finished.is_set() or self.abort_reason is not None:
            return
        self.abort_reason = (code, message)
        self.abort_requested.set()

    def abort_later(self, delay: float, code: str, message: str) -> None:
        """`abort` in `delay` seconds unless the turn has ended by then."""
        if self.finished.is_set() or self.abort_reason is not None or self._abort_timer is not None:
            return
        self._abort_timer = asyncio.get_running_loop().call_later(delay, self.abort, code, message)

    @classmethod
    def recorded(cls, frames: list[Frame]) -> Turn:
        """A turn that is over, rebuilt from history (`frames` from its user message on)."""
        turn = cls(message_id_of(frames[0]) if frames else None)
        for frame in frames:
            turn.push(frame)
        if not turn.finished.is_set():  # only a damaged history file gets here
            last = frames[-1] if frames else {"seq": 0, "time": _now()}
            turn.push({"seq": last["seq"], "event": EVENT_ERROR, "time": last.get("time"),
                       "code": "turn_interrupted", "message": "the turn's end is missing from history"})
        return turn

    @property
    def user_seq(self) -> int:
        return int(self.frames[0]["seq"])

    def push(self, frame: Frame) -> None:
        self.frames.append(frame)
        for listener in self._listeners:
            listener.put_nowait(frame)
        if frame["event"] in TERMINAL_EVENTS:
            self.result = frame
            self.finished.set()
            if self._abort_timer is not None:
                self._abort_timer.cancel()

    def subscribe(self) -> asyncio.Queue[Frame]:
        """A queue of the turn's frames: those so far, then each new one as it comes."""
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        for frame in self.frames:
            queue.put_nowait(frame)
        self._listeners.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Frame]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(queue)


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


class RuntimeBridge:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.session = json_safe(options.session.to_json())
        self.health: h.Health = h.STARTING
        self.agent_start = h.AgentStart()
        self.opened: OpenedSession | None = None
        self.session_info = SessionInfoStatus()
        self.message_count = 0
        self.last_activity: str | None = None
        self._history: HistoryStore | None = None
        self._link: AgentLink | None = None
        self._turn: Turn | None = None
        self._message_ids: dict[str, int] = {}
        self._turn_task: asyncio.Task[None] | None = None
        self._open_task: asyncio.Task[None] | None = None
        self._closing = False
        self._turn_fault: str | None = None
        self._recorded = asyncio.Event()
        """Pulsed for every recorded frame (see `history_after_waiting`)."""
        self._released = False
        """Set by `close()`: readers no longer wait for frames."""
        self.waiting_readers = 0
        """History readers waiting for a frame right now."""

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load history and start opening the agent's session in the background (so that
        `/healthz` answers `Starting` meanwhile)."""
        workspace = self.options.workspace
        workspace.mkdir(parents=True, exist_ok=True)
        self._history = HistoryStore.open(history_path(workspace))
        self._replay_history()
        process = AgentProcess(
            self.options.command, cwd=workspace, env=self.options.agent_env(), on_exit=self._on_agent_exit
        )
        if self.options.protocol == "stdio-lines":
            self._link = StdioLinesLink(
                process,
                emit=self._on_update,
                quiet=self.options.quiet_ms / 1000,
                first_output_timeout=self.options.first_output_timeout,
            )
        else:
            self._link = AcpLink(
                process,
                workspace=workspace,
                emit=self._on_update,
                permissions=self.options.permissions,
                start_timeout=self.options.start_timeout,
            )
        self._open_task = asyncio.create_task(self._open(load_state(workspace)), name="runtime.open")

    def _replay_history(self) -> None:
        assert self._history is not None
        last_user_seq: int | None = None
        for frame in self._history:
            if frame.get("event") == EVENT_USER_MESSAGE:
                last_user_seq = frame["seq"]
                message_id = message_id_of(frame)
                if message_id is not None:
                    self._message_ids[message_id] = frame["seq"]
            elif frame.get("event") in TERMINAL_EVENTS:
                last_user_seq = None
        if last_user_seq is not None and self._history.last is not None:
            # Dated like the last thing that happened: a restart is not activity in the session.
            frame = self._history.append(
                *error_body("runtime_restarted", "the runtime restarted before the turn ended"),
                time=self._history.last.get("time") or _now(),
            )
            logger.warning("the turn from seq %d never ended; closed at seq %d", last_user_seq, frame["seq"])
        updates = [frame.get("update") or {} for frame in self._history
                   if frame.get("event") == EVENT_SESSION_INFO_UPDATE]
        self.session_info = fold_session_info(None, updates).info
        self.message_count = sum(1 for frame in self._history if frame.get("event") in COUNTED_EVENTS)
        self.last_activity = self._history.last.get("time") if self._history.last else None
        if len(self._history):
            logger.info("history: %d frames reloaded, last seq %d", len(self._history), self._history.last_seq)

    async def _open(self, previous: WorkspaceState) -> None:
        assert self._link is not None
        previous_id = previous.acp_session_id if previous.protocol in (None, self._link.protocol) else None
        try:
            opened = await self._link.open(previous_id)
        except AgentStartFailed as exc:
            logger.error("the agent is not available: %s", exc)
            self.opened = exc.handshake
            self._set_health(exc.health)
            self._start_failed(exc.health)
            return
        self.opened = opened
        if self.agent_start.state == h.START_STARTING:
            self.agent_start = h.AgentStart(h.START_STARTED)
        if opened.acp_session_id is not None:
            state = WorkspaceState(acp_session_id=opened.acp_session_id, protocol=self._link.protocol)
            save_state(self.options.workspace, state)
            logger.info("ACP session %s opened with %s", opened.acp_session_id, opened.opened_with)
        self._set_health(h.healthy())

    def _set_health(self, health: h.Health) -> None:
        # An exited agent stays reported as exited: nothing it said before matters more.
        if self.health.reason == h.REASON_AGENT_EXITED and health.reason != h.REASON_STOPPING:
            return
        if self._closing and health.reason != h.REASON_STOPPING:
            return
        self.health = health

    def _start_failed(self, failure: h.Health) -> None:
        """The agent will not open its session: the first reason found is the one reported."""
        if self.agent_start.state == h.START_STARTING and not self._closing:
            self.agent_start = h.start_failed(failure)

    def _on_agent_exit(self, code: int | None) -> None:
        assert self._link is not None
        exited = h.agent_exited(code, self._link.process.stderr_tail.lines())
        self._set_health(exited)
        # An exit before the session was open is a failed start, said now: a start-up request
        # may otherwise wait for its timeout (a child that outlives the agent keeps stdout open).
        self._start_failed(exited)
        if self._turn is not None:
            # The link reports the exit when the agent's stdout closes; a child that outlives the
            # agent may hold it open, so the turn ends here if the link has not said so by then.
            self._turn.abort_later(AGENT_EXIT_GRACE, "agent_exited", f"{exited.message} during the turn")

    async def close(self) -> None:
        """Stop: end the running turn (recorded as an error), stop the agent, close history."""
        self._set_health(h.STOPPING)
        self._closing = True
        for task in (self._open_task, self._turn_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._release_readers()
        if self._link is not None:
            await self._link.close()
        if self._history is not None:
            self._history.close()

    # -- frames --------------------------------------------------------------------------------

    def _record(self, event: str, body: dict[str, Any]) -> Frame:
        """Record a frame; never raises for the disk (see `HistoryStore.append`). A frame of a
        running turn that could not be written ends the turn: a conversation the runtime cannot
        keep is not carried on."""
        assert self._history is not None
        frame = self._history.append(event, body, time=_now())
        self._recorded.set()  # wakes every reader waiting now (see `history_after_waiting`) ...
        self._recorded.clear()  # ... and only them
        self.last_activity = frame["time"]
        if event in COUNTED_EVENTS:
            self.message_count += 1
        if self._turn is not None:
            self._turn.push(frame)
            if self._history.write_error is not None and event not in TERMINAL_EVENTS:
                self._turn.abort(
                    "history_unwritable",
                    f"the runtime cannot record the conversation ({self._history.write_error}); the turn was ended",
                )
        return frame

    def _on_update(self, update: Mapping[str, Any], *, replayed: bool = False) -> None:
        # Called from the link's receive loop: whatever the agent sent, nothing may raise here.
        try:
            safe = json_safe(update)
            if update_kind(safe) == EVENT_SESSION_INFO_UPDATE:
                try:
                    self.session_info = apply_update(self.session_info, safe)
                except ValueError as exc:
                    logger.warning("session_info_update ignored: %s", exc)
            if replayed:
                # session/load replays the conversation the bridge already has in history.
                return
            self._record(*update_body(safe))
        except Exception:  # noqa: BLE001 - a bug here must not cost the agent's link its reader
            logger.exception("an update from the agent could not be handled")

    # -- turns ---------------------------------------------------------------------------------

    @property
    def runtime_health(self) -> h.Health:
        """What `/healthz` reports: the agent's health, unless the agent is fine and the runtime
        is not (history that cannot be written, a turn the machinery could not close)."""
        if not self.health.ok:
            return self.health
        if self._history is not None and self._history.write_error is not None:
            return h.history_unwritable(self._history.write_error)
        if self._turn_fault is not None:
            return h.turn_machinery_failed(self._turn_fault)
        return self.health

    @property
    def state(self) -> str:
        if not self.health.ok:
            return "starting" if self.health.reason == h.REASON_STARTING else "unhealthy"
        return "busy" if self._turn is not None else "idle"

    def known_turn(self, message_id: str | None) -> Turn | None:
        """The turn a message with this id started, if one did (running or recorded)."""
        if message_id is None or message_id not in self._message_ids:
            return None
        seq = self._message_ids[message_id]
        if self._turn is not None and self._turn.user_seq == seq:
            return self._turn
        assert self._history is not None
        return Turn.recorded(turn_frames(self._history.after(seq - 1)))

    def begin_turn(self, blocks: list[dict[str, Any]], message_id: str | None = None) -> Turn:
        """Record the user's message and start the turn; raises SessionBusy or AgentUnavailable.

        Synchronous up to the task's creation, so two requests cannot both pass the busy check.
        """
        if self._turn is not None and self._turn_task is not None and self._turn_task.done():
            self._close_orphaned_turn(self._turn, self._turn_task)  # the safety net has not run yet
        if self._turn is not None:
            raise SessionBusy("a message is already being answered; wait for it or cancel it")
        if not self.health.ok:
            raise AgentUnavailable(self.health)
        turn = Turn(message_id)
        self._turn = turn
        frame = self._record(*update_body(user_message_update(blocks, message_id)))
        if message_id is not None:
            self._message_ids[message_id] = frame["seq"]
        run = self._run_traced_turn if tracing.enabled() else self._run_turn
        task = asyncio.create_task(run(turn, blocks), name="runtime.turn")
        task.add_done_callback(lambda done: self._close_orphaned_turn(turn, done))
        self._turn_task = task
        return turn

    @property
    def span_attributes(self) -> dict[str, tracing.AttributeValue]:
        return tracing.session_attributes(self.session.get("namespace"), self.session.get("name"))

    async def _run_traced_turn(self, turn: Turn, blocks: list[dict[str, Any]]) -> None:
        """`_run_turn` in an `agent turn` span: a child of the request's that began it (the task
        copied its context), ending with the turn's stop reason and token counts, or its error."""
        with tracing.span("agent turn", {**self.span_attributes, tracing.TURN_SEQ: turn.user_seq}) as current:
            try:
                await self._run_turn(turn, blocks)
            finally:
                tracing.record_turn(current, turn.result)

    async def _run_turn(self, turn: Turn, blocks: list[dict[str, Any]]) -> None:
        seq = turn.user_seq
        logger.info("turn from seq %d started", seq)
        try:
            outcome = await self._prompt(turn, blocks)
        except (TurnFailed, TurnAborted) as exc:
            frame = self._record(*error_body(exc.code, exc.message))
            logger.warning("turn from seq %d failed at seq %d: %s", seq, frame["seq"], exc.code)
        except asyncio.CancelledError:
            self._record(*error_body("runtime_stopping", "the runtime stopped during the turn"))
            raise
        except Exception:
            logger.exception("turn from seq %d failed", seq)
            self._record(*error_body("internal_error", "the runtime failed during the turn"))
        else:
            frame = self._record(*done_body(outcome.stop_reason, turn_usage(outcome.usage, turn.frames)))
            logger.info("turn from seq %d done at seq %d: %s", seq, frame["seq"], outcome.stop_reason)
            self._turn_fault = None
        finally:
            if self._turn is turn:
                self._turn = None

    async def _prompt(self, turn: Turn, blocks: list[dict[str, Any]]) -> TurnOutcome:
        """The agent's answer, unless the turn is aborted first (then TurnAborted, once the
        prompt has been abandoned and the agent asked to stop)."""
        assert self._link is not None
        if turn.abort_reason is not None:
            raise TurnAborted(*turn.abort_reason)
        prompt = asyncio.ensure_future(self._link.prompt(blocks))
        aborted = asyncio.ensure_future(turn.abort_requested.wait())
        try:
            await asyncio.wait((prompt, aborted), return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
            if not prompt.done():
                await self._abandon(prompt)
        if turn.abort_reason is None:
            return prompt.result()
        if prompt.done() and not prompt.cancelled() and prompt.exception() is not None:
            logger.info("the abandoned prompt ended with %s", type(prompt.exception()).__name__)
        raise TurnAborted(*turn.abort_reason)

    async def _abandon(self, prompt: asyncio.Future[TurnOutcome]) -> None:
        """Stop waiting for a prompt: ask the agent to stop (bounded), cancel the link's call and
        give it PROMPT_STOP_TIMEOUT to unwind; one that does not is a broken link (health)."""
        assert self._link is not None
        if not self._closing:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(self._link.cancel(), timeout=PROMPT_STOP_TIMEOUT)
        prompt.cancel()
        done, _ = await asyncio.wait((prompt,), timeout=PROMPT_STOP_TIMEOUT)
        if done:
            return
        self._turn_fault = f"the agent link did not let go of an ended turn's prompt within {PROMPT_STOP_TIMEOUT:g}s"
        logger.error("%s", self._turn_fault)
        prompt.add_done_callback(self._abandoned_prompt_ended)

    def _abandoned_prompt_ended(self, prompt: asyncio.Future[TurnOutcome]) -> None:
        if not prompt.cancelled():
            prompt.exception()  # retrieved: it was abandoned, its outcome is of no interest
        logger.warning("an abandoned prompt has ended at last")
        self._turn_fault = None

    def _close_orphaned_turn(self, turn: Turn, task: asyncio.Future[None]) -> None:
        """The safety net: a turn task that ended without closing its turn (a bug, or a task
        cancelled before it ran) must not leave the session busy. Reported in health."""
        if turn.finished.is_set() and self._turn is not turn:
            return
        if task.cancelled():
            why = "it was cancelled"
        elif task.exception() is not None:
            why = f"{type(task.exception()).__name__}: {task.exception()}"
        else:
            why = "it returned"
        if not self._closing:
            self._turn_fault = f"a turn task ended without ending its turn ({why})"
            logger.error("%s", self._turn_fault)
        if not turn.finished.is_set():
            code, message = (("runtime_stopping", "the runtime stopped during the turn") if self._closing
                             else ("internal_error", "the runtime failed during the turn"))
            if self._turn is turn:
                self._record(*error_body(code, message))
            else:
                turn.push({"seq": self.last_seq, "event": EVENT_ERROR, "time": _now(), "code": code, "message": message})
        if self._turn is turn:
            self._turn = None

    async def cancel(self) -> bool:
        """Ask the agent to stop the running turn. The turn ends in any case: at once when the
        agent cannot be asked, after `cancel_grace` seconds when it does not stop."""
        turn = self._turn
        if turn is None or self._link is None:
            return False
        grace = self.options.cancel_grace
        try:
            asked = await asyncio.wait_for(self._link.cancel(), timeout=grace)
            why = "the link to the agent is closed"
        except asyncio.TimeoutError:
            asked, why = False, f"asking the agent took over {grace:g}s"
        except Exception as exc:  # noqa: BLE001 - a link that cannot cancel must not keep the turn
            asked, why = False, f"{type(exc).__name__}: {exc}"
        if not asked:
            turn.abort("cancel_failed", f"the agent could not be asked to stop ({why}); the runtime ended the turn")
        else:
            turn.abort_later(grace, "cancel_timeout",
                             f"the agent did not end the turn within {grace:g}s of cancel; the runtime ended it")
        return True

    # -- reading -------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._history.last_seq if self._history is not None else 0

    def history_after(self, seq: int, limit: int | None = None) -> list[Frame]:
        return self._history.after(seq, limit) if self._history is not None else []

    async def history_after_waiting(self, seq: int, limit: int | None, wait: float) -> list[Frame]:
        """`history_after`, or when there is nothing after `seq` yet, what is recorded within
        `wait` seconds: the frames after `seq` as soon as there are any; [] when none came in
        time, or the bridge is stopping."""
        if self.last_seq > seq or wait <= 0 or self._released:
            return self.history_after(seq, limit)
        self.waiting_readers += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    while self.last_seq <= seq and not self._released:
                        await self._recorded.wait()
        finally:
            self.waiting_readers -= 1
        return self.history_after(seq, limit)

    def _release_readers(self) -> None:
        """Stop making readers wait: those waiting answer now, later ones at once."""
        self._released = True
        self._recorded.set()
        self._recorded.clear()

    def health_json(self) -> dict[str, Any]:
        body = self.runtime_health.to_json()
        body["agentStart"] = self.agent_start.to_json()
        if self.health.ok:
            body["state"] = self.state
            body["protocol"] = self.options.protocol
            body["acpSessionId"] = self.opened.acp_session_id if self.opened else None
        return body

    def capabilities(self) -> dict[str, Any]:
        opened = self.opened
        acp = self.options.protocol == "acp"
        return {
            "protocol": self.options.protocol,
            "streaming": True,
            "history": True,
            "cancel": True,
            "longPoll": True,
            "resume": bool(opened and opened.can_load) if acp else False,
            "agent": dict(opened.agent_capabilities) if opened and acp else None,
        }

    def info(self) -> dict[str, Any]:
        opened = self.opened
        return {
            "session": self.session,
            "acpSessionId": opened.acp_session_id if opened else None,
            "openedWith": opened.opened_with if opened else None,
            "agent": dict(opened.agent_info) if opened and opened.agent_info else None,
            "state": self.state,
            "agentStart": self.agent_start.to_json(),
            "sessionInfo": self.session_info.model_dump(mode="json", by_alias=True),
            "lastActivityTime": self.last_activity,
            "messageCount": self.message_count,
            "lastSeq": self.last_seq,
            "health": self.health_json(),
            "capabilities": self.capabilities(),
            "outputMark": output_mark(),
        }
