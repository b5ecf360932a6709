"""`TmuxProvider`: sessions as tmux sessions on the operator's host (§6 "tmux", development).

Each AgentSession is one tmux session, `ags-<namespace>-<name>-<uid8>`, on the socket
`tmux.socketName` (default `agent-sessions`, apart from the user's own tmux). Its window runs the
runtime bridge (§7) on a free port of 127.0.0.1, with the workspace
`<workspace root>/<namespace>/<name>-<uid8>`. The provider keeps no state of its own: the name is
computed from the session, and what tmux cannot be asked (the bridge's port, whose session it is)
is stored on the tmux session itself as user options (`@ags-port`, `@ags-uid`, …). So after an
operator restart `observe()` finds every session and its endpoint again — adoption is by
construction, and costs no write.

* `ensure` creates the tmux session; "duplicate session" means it exists, which is success once
  we checked it is this session's (`@ags-uid`). The configuration applies at creation only.
* `observe`: no tmux session → ABSENT; the pane's process ended → SUCCEEDED/FAILED with its exit
  status (`remain-on-exit` keeps the dead pane so the status can be read); running → RUNNING,
  ready once the bridge's `/healthz` answers 200.
* `stop` asks the bridge to shut down (SIGTERM: it flushes history and stops the agent), waits a
  little, and kills the tmux session. The workspace stays: `ensure` resumes in it.
* `delete` kills the tmux session and removes the workspace. Not found is done.
* `logs` is the pane's history (capture-pane), redacted before it is cut.

libtmux is synchronous: every tmux call runs in a worker thread (`asyncio.to_thread`).

Security: the agent runs as the operator's user, with the user's files, network and HOME, and no
resource limits. This provider is for a developer's own machine, never for a shared operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp

from agent_sessions.api import constants as c
from agent_sessions.lifecycle.observation import Observation
from agent_sessions.wire.credentials import session_token
from agent_sessions.wire.paths import HEALTH_PATH

from ..base import Capabilities, ProviderRef, SessionRef, ValidationContext
from ..errors import InvalidConfiguration, ProviderUnavailable, SessionAlreadyExists, SessionNotFound
from ..logs import LogTail, bounded_log
from ..redaction import redact
from .command import RUNTIME_COMMAND, process_env, runtime_argv, window_argv
from .constants import (
    DEFAULT_SOCKET,
    EXIT_STATUS_GRACE_SECONDS,
    HEALTH_TIMEOUT_SECONDS,
    LAUNCH_DIRECTORY,
    ORPHAN_MIN_AGE_SECONDS,
    OPTION_CONFIG_HASH,
    OPTION_NAME,
    OPTION_NAMESPACE,
    OPTION_PORT,
    OPTION_UID,
    OPTION_WORKSPACE,
    RUNTIME_HOST,
    START_WATCH_INTERVAL_SECONDS,
    START_WATCH_SECONDS,
    STOP_GRACE_SECONDS,
    TOKEN_FILE,
)
from ..environment import ObjectReader, resolve_env, secret_values
from .metrics import ORPHANS, ORPHANS_REAPED
from .names import tmux_session_name, workspace_path
from ..object_reader import KubernetesObjectReader
from .observe import endpoint_of, observe_tmux
from .state import RuntimeProbe, TmuxSessionState
from .tmux_server import TmuxServer
from .validation import block, tmux_problems

logger = logging.getLogger(__name__)

DEAD_OUTPUT_LINES: Final = 3
"""Lines of a dead pane's output quoted in the observation's message (why the bridge ended)."""


def default_workspace_root() -> Path:
    """`$XDG_STATE_HOME/agent-sessions/tmux`, else `~/.local/state/agent-sessions/tmux`."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "agent-sessions" / "tmux"


class TmuxProvider:
    """The `tmux` provider. `api_client` (a kubernetes_asyncio ApiClient) reads the Secrets and
    ConfigMaps the agent's env references; without one, only literal env values work.

    `socket_name` is the socket of sessions whose config does not name one, and the first socket
    `orphans()` looks at (default `agent-sessions`). A resolved configuration always names one
    (`tmux.socketName` has a built-in default, `agent-sessions`): to move every session to
    another socket, set it in the operator's defaults (Helm values), not here.

    tmux sends the operator no events (a pod's readiness arrives by watch). `on_change(namespace,
    name)`, when given, is called once a session this provider started answers `/healthz` (or
    after `start_watch_seconds`), so the operator can reconcile it at once instead of at its next
    poll.

    `reap_orphans` makes `orphans()` kill the tmux sessions it finds without an AgentSession,
    instead of only reporting them.
    """

    type_name = c.PROVIDER_TMUX

    def __init__(
        self,
        api_client: Any = None,
        *,
        socket_name: str | None = None,
        workspace_root: Path | str | None = None,
        reap_orphans: bool = False,
        core_api: Any = None,
        runtime_command: Sequence[str] = RUNTIME_COMMAND,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        health_timeout_seconds: float = HEALTH_TIMEOUT_SECONDS,
        tmux_bin: str | None = None,
        on_change: Callable[[str, str], None] | None = None,
        start_watch_seconds: float = START_WATCH_SECONDS,
        runtime_key: bytes | None = None,
    ) -> None:
        self.default_socket = socket_name or DEFAULT_SOCKET
        self.workspace_root = Path(workspace_root or default_workspace_root()).expanduser().absolute()
        self.reap_orphans = reap_orphans
        self.runtime_key = runtime_key
        """The runtime key session tokens derive from (None: bridges serve anyone); the operator sets it."""
        self._reader: ObjectReader | None = None
        if core_api is not None:
            self._reader = KubernetesObjectReader(core_api, api_client)
        elif api_client is not None:
            self._reader = KubernetesObjectReader.from_api_client(api_client)
        self._runtime_command = tuple(runtime_command)
        self._stop_grace = stop_grace_seconds
        self._health_timeout = aiohttp.ClientTimeout(total=health_timeout_seconds)
        self._tmux_bin = tmux_bin
        self._servers: dict[str, TmuxServer] = {}
        self.on_change = on_change
        self._start_watch_seconds = start_watch_seconds
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._dead_without_status: dict[str, tuple[str, float]] = {}
        """tmux session → (pane, when first seen dead without an exit status)."""

    # --- the protocol ---------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], context: ValidationContext) -> list[str]:
        """tmux sessions run on the operator's host as its user: no limit a template could raise
        applies to them, so `context` changes nothing."""
        return tmux_problems(config)

    def capabilities(self) -> Capabilities:
        return Capabilities(streaming=True, history=True, logs=True, resume=True, cancel=True, resource_limits=False)

    async def ensure(self, session: SessionRef) -> ProviderRef:
        problems = self.validate(session.config, session.context)
        if problems:
            raise InvalidConfiguration(problems)
        server, name = self.server_for(session.config), self.tmux_name(session)
        _, existing = await self._locate(session)
        if existing is not None:
            return self._owned(session, existing)
        agent_env = await resolve_env(block(session.config, "agent"), session.namespace, self._reader)
        created = await asyncio.to_thread(self._start, server, session, name, agent_env.values)
        if isinstance(created, ProviderRef):
            self._watch_start(session, created.endpoint)
            return created
        if created is None:  # vanished between "duplicate" and our look: the next ensure creates it
            return ProviderRef(type=self.type_name, id=name)
        return self._owned(session, created)

    async def observe(self, session: SessionRef) -> Observation:
        name = self.tmux_name(session)
        server, state = await self._locate(session)
        if state is None or not state.dead:
            self._dead_without_status.pop(name, None)
        if state is None:
            return observe_tmux(None)
        if state.uid != session.uid:
            return observe_tmux(None)  # another's tmux session under this name is not this one's backing
        if state.dead:
            return observe_tmux(state, output=await self._dead_output(server, session, state),
                                exit_status_overdue=self._exit_status_overdue(state))
        endpoint = endpoint_of(state)
        return observe_tmux(state, await self._probe(endpoint) if endpoint else None)

    async def stop(self, session: SessionRef) -> None:
        self._unwatch(session)
        server, state = await self._locate(session)
        if state is not None:
            await asyncio.to_thread(self._stop, server, state.name, session.uid)
        await asyncio.to_thread(self._forget_env_files, self.tmux_name(session))

    async def delete(self, session: SessionRef) -> bool:
        self._unwatch(session)
        name = self.tmux_name(session)
        # The config may no longer resolve (a deleted template): look on every socket we know.
        sockets = {self.socket_of(session.config), *self._servers}
        for socket_name in sorted(sockets):
            await asyncio.to_thread(self._kill_own, self.server(socket_name), name, session.uid)
        workspace = self.workspace(session)
        await asyncio.to_thread(self._remove_workspace, name, workspace)
        return True

    async def logs(self, session: SessionRef, tail_lines: int = c.MAX_LOG_TAIL_LINES,
                   limit_bytes: int = c.MAX_LOG_TAIL_BYTES) -> LogTail:
        """See `Provider.logs`: the pane's history (what the bridge and the agent wrote to it)."""
        server, state = await self._locate(session)
        name = self.tmux_name(session)
        if state is None or state.uid != session.uid:
            raise SessionNotFound(f"tmux session {name} does not exist on socket {server.socket_name}")
        text = await asyncio.to_thread(server.capture, name, state.pane or None)
        if text is None:
            raise SessionNotFound(f"tmux session {name} does not exist on socket {server.socket_name}")
        secrets = await secret_values(block(session.config, "agent"), session.namespace, self._reader)
        return bounded_log(_trimmed(text), secrets, max_lines=tail_lines, max_bytes=limit_bytes)

    # --- adoption and orphans ---------------------------------------------------------------

    async def list_sessions(self) -> list[TmuxSessionState]:
        """Every `ags-…` tmux session on the sockets this provider knows (its default, and every
        socket a session's config named since the operator started)."""
        return [state for _, state in await self._list_by_socket()]

    async def adopt(self, known_uids: Collection[str]) -> list[str]:
        """The tmux sessions that belong to known AgentSessions (found again after a restart).

        Nothing needs doing to adopt them — `observe()` finds them by name — this says which."""
        known = set(known_uids)
        adopted = [state.name for state in await self.list_sessions() if state.uid in known]
        if adopted:
            logger.info("tmux provider: %d existing tmux session(s) belong to AgentSessions", len(adopted))
        return adopted

    async def orphans(self, known_uids: Collection[str], *, namespaces: Collection[str] | None = None,
                      min_age_seconds: float = ORPHAN_MIN_AGE_SECONDS) -> list[str]:
        """The `ags-…` tmux sessions without an AgentSession among `known_uids`: reported (log,
        `agent_session_tmux_orphans`), and killed when the provider reaps orphans. Only tmux
        sessions carrying the provider's marker are ever killed. `namespaces` limits the check to
        sessions of those namespaces (an operator that watches only some namespaces cannot know
        the others' sessions). Tmux sessions younger than `min_age_seconds` are left out: the
        list of AgentSessions the caller took may predate them."""
        known = set(known_uids)
        now = time.time()
        orphaned = [
            (socket_name, state) for socket_name, state in await self._list_by_socket()
            if state.uid not in known
            and (namespaces is None or state.namespace in namespaces)
            and (state.created is None or now - state.created >= min_age_seconds)
        ]
        reaped = 0
        for socket_name, state in orphaned:
            owner = f"{state.namespace}/{state.session} (uid {state.uid})" if state.ours else "no AgentSession marker"
            if self.reap_orphans and state.ours:
                await asyncio.to_thread(self.server(socket_name).kill, state.name)
                ORPHANS_REAPED.inc()
                reaped += 1
                logger.warning("tmux provider: killed orphaned tmux session %s (%s)", state.name, owner)
            else:
                logger.warning("tmux provider: orphaned tmux session %s (%s); it is not removed", state.name, owner)
        ORPHANS.set(len(orphaned) - reaped)
        return [state.name for _, state in orphaned]

    async def _locate(self, session: SessionRef) -> tuple[TmuxServer, TmuxSessionState | None]:
        """The session's tmux session: on the socket its config names, else on another socket
        this provider knows (the config applies at creation: a session started before its socket
        was changed runs on the old one until it stops)."""
        name, server = self.tmux_name(session), self.server_for(session.config)
        state = await asyncio.to_thread(server.describe, name)
        if state is not None:
            return server, state
        for socket_name in sorted(set(self._servers) - {server.socket_name}):
            other = await asyncio.to_thread(self._servers[socket_name].describe, name)
            if other is not None and other.uid == session.uid:
                return self._servers[socket_name], other
        return server, None

    async def _list_by_socket(self) -> list[tuple[str, TmuxSessionState]]:
        found: list[tuple[str, TmuxSessionState]] = []
        for socket_name in sorted({self.default_socket, *self._servers}):
            found += [(socket_name, state) for state in await asyncio.to_thread(self.server(socket_name).list)]
        return found

    # --- names ------------------------------------------------------------------------------

    def socket_of(self, config: Mapping[str, Any]) -> str:
        return str(block(config, "tmux").get("socketName") or self.default_socket)

    def server(self, socket_name: str) -> TmuxServer:
        if socket_name not in self._servers:
            self._servers[socket_name] = TmuxServer(socket_name, tmux_bin=self._tmux_bin)
        return self._servers[socket_name]

    def server_for(self, config: Mapping[str, Any]) -> TmuxServer:
        return self.server(self.socket_of(config))

    def tmux_name(self, session: SessionRef) -> str:
        return tmux_session_name(session.namespace, session.name, session.uid)

    def workspace(self, session: SessionRef) -> Path:
        return workspace_path(self.workspace_root, session.namespace, session.name, session.uid)

    # --- helpers (the `_start`, `_stop` and `_remove_workspace` run in a worker thread) -----

    def _owned(self, session: SessionRef, state: TmuxSessionState) -> ProviderRef:
        if state.uid != session.uid:
            owner = f"AgentSession uid {state.uid}" if state.uid else "nobody (it was not made by the operator)"
            raise SessionAlreadyExists(
                f"tmux session {state.name} exists and belongs to {owner}, not to AgentSession "
                f"{session.namespace}/{session.name} (uid {session.uid})"
            )
        return ProviderRef(type=self.type_name, id=state.name, endpoint=endpoint_of(state))

    def _start(self, server: TmuxServer, session: SessionRef, name: str,
               agent_env: Mapping[str, str]) -> ProviderRef | TmuxSessionState | None:
        """Create the tmux session; its ref, or — when it already existed — its state."""
        workspace = self.workspace(session)
        try:
            self.workspace_root.mkdir(mode=0o700, parents=True, exist_ok=True)
            workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
            port = _free_port()
            token_file = self._write_token_file(session, workspace) if self.runtime_key is not None else None
            env_file = self._write_env_file(name, process_env(os.environ, agent_env, session))
        except OSError as error:
            raise ProviderUnavailable(f"cannot prepare the workspace {workspace}: {error}") from error
        command = runtime_argv(session, session.config, port=port, workspace=workspace,
                               runtime_command=self._runtime_command, token_file=token_file)
        options = {
            OPTION_UID: session.uid,
            OPTION_NAMESPACE: session.namespace,
            OPTION_NAME: session.name,
            OPTION_PORT: str(port),
            OPTION_WORKSPACE: str(workspace),
            OPTION_CONFIG_HASH: session.config_hash or "",
        }
        try:
            created = server.create(name, window_argv(session.config, env_file, command),
                                    start_directory=workspace, options=options)
        except BaseException:
            env_file.unlink(missing_ok=True)
            raise
        if created:
            logger.info("tmux provider: started %s on socket %s (port %d)", name, server.socket_name, port)
            return ProviderRef(type=self.type_name, id=name, endpoint=f"http://{RUNTIME_HOST}:{port}")
        env_file.unlink(missing_ok=True)
        return server.describe(name)

    def _write_token_file(self, session: SessionRef, workspace: Path) -> Path:
        """The session's runtime token in a 0600 file of its workspace (replaced whole: a rotated
        key gives a new token at the next start)."""
        assert self.runtime_key is not None
        path = workspace / TOKEN_FILE
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(session_token(self.runtime_key, session.uid))
        os.replace(staging, path)
        return path

    def _write_env_file(self, name: str, env: Mapping[str, str]) -> Path:
        directory = self.workspace_root / LAUNCH_DIRECTORY
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"{name}-{uuid.uuid4().hex[:12]}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(env), handle)
        return path

    def _kill_own(self, server: TmuxServer, name: str, uid: str) -> None:
        """Kill the tmux session `name` if it is the session's (never another's of that name)."""
        state = server.describe(name)
        if state is not None and state.uid == uid:
            server.kill(name)

    def _stop(self, server: TmuxServer, name: str, uid: str) -> None:
        """SIGTERM the bridge, wait (bounded) for its pane to die, then kill the tmux session."""
        state = server.describe(name)
        if state is None or state.uid != uid:
            return  # gone, or another's tmux session under this name: not ours to stop
        if not state.dead and state.pid:
            try:
                os.kill(state.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            else:
                deadline = time.monotonic() + self._stop_grace
                while time.monotonic() < deadline and state is not None and not state.dead:
                    time.sleep(0.05)
                    state = server.describe(name)
        server.kill(name)

    def _remove_workspace(self, name: str, workspace: Path) -> None:
        self._forget_env_files(name)
        if self.workspace_root not in workspace.parents:
            raise ProviderUnavailable(f"refusing to remove {workspace}: not under {self.workspace_root}")
        try:
            shutil.rmtree(workspace)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise ProviderUnavailable(f"cannot remove the workspace {workspace}: {error}") from error

    def _forget_env_files(self, name: str) -> None:
        """Environment files a launcher never read (the shell could not start it)."""
        for path in (self.workspace_root / LAUNCH_DIRECTORY).glob(f"{name}-*.json"):
            path.unlink(missing_ok=True)

    def _exit_status_overdue(self, state: TmuxSessionState) -> bool:
        """Whether a dead pane has had no exit status for longer than tmux needs to collect one."""
        if state.exit_status is not None or state.exit_signal or not state.pane:
            self._dead_without_status.pop(state.name, None)
            return False
        pane, since = self._dead_without_status.get(state.name, ("", 0.0))
        if pane != state.pane:
            pane, since = self._dead_without_status[state.name] = (state.pane, time.monotonic())
        return time.monotonic() - since > EXIT_STATUS_GRACE_SECONDS

    def _watch_start(self, session: SessionRef, endpoint: str | None) -> None:
        if self.on_change is None or not endpoint:
            return
        self._unwatch(session)
        task = asyncio.create_task(self._await_ready(session, endpoint), name=f"tmux-start-{self.tmux_name(session)}")
        self._watchers[session.uid] = task
        task.add_done_callback(lambda done: self._watchers.pop(session.uid, None)
                               if self._watchers.get(session.uid) is done else None)

    def _unwatch(self, session: SessionRef) -> None:
        task = self._watchers.pop(session.uid, None)
        if task is not None:
            task.cancel()

    async def _await_ready(self, session: SessionRef, endpoint: str) -> None:
        """Probe a new session's `/healthz` until it answers 200 (bounded), then tell `on_change`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_watch_seconds
        while loop.time() < deadline:
            probe = await self._probe(endpoint)
            if probe is not None and probe.status == 200:
                break
            await asyncio.sleep(START_WATCH_INTERVAL_SECONDS)
        if self.on_change is not None:
            try:
                self.on_change(session.namespace, session.name)
            except Exception:  # a notification is never worth failing for
                logger.exception("tmux provider: on_change failed for %s/%s", session.namespace, session.name)

    async def _probe(self, endpoint: str) -> RuntimeProbe | None:
        try:
            async with aiohttp.ClientSession(timeout=self._health_timeout) as http:
                async with http.get(f"{endpoint}{HEALTH_PATH}") as response:
                    try:
                        body = await response.json(content_type=None)
                    except ValueError:
                        body = {}
                    return RuntimeProbe(response.status, body if isinstance(body, dict) else {})
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None

    async def _dead_output(self, server: TmuxServer, session: SessionRef, state: TmuxSessionState) -> str:
        """The end of a dead pane's output, redacted — or nothing when the Secrets to redact
        cannot be read (a message goes to conditions and Events: better none than a leaky one)."""
        text = await asyncio.to_thread(server.capture, state.name, state.pane or None)
        lines = [line for line in _trimmed(text or "").splitlines() if line.strip()
                 and not line.startswith("Pane is dead")]
        if not lines:
            return ""
        try:
            secrets = await secret_values(block(session.config, "agent"), session.namespace, self._reader)
        except ProviderUnavailable:
            return ""
        return redact("\n".join(lines[-DEAD_OUTPUT_LINES:]), secrets)


def _free_port() -> int:
    """A port free on 127.0.0.1 right now. Another process could take it before the bridge binds
    it; the bridge then exits, the pane is dead, and the restart policy starts it again on a new
    port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((RUNTIME_HOST, 0))
        return int(probe.getsockname()[1])


def _trimmed(text: str) -> str:
    """The pane's text without the empty screen rows below the last output."""
    lines = text.rstrip("\n").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines) + ("\n" if lines else "")
