"""The tmux provider's own promises (§6 "tmux"), with a real tmux server and the real operator:
names that never collide, adoption after an operator restart, deletion, orphans, the pane's exit
status, and the agent's environment."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agent_sessions.api import constants as c
from agent_sessions.lifecycle import BackingState
from agent_sessions.providers import ProviderUnavailable, SessionAlreadyExists, SessionNotFound, SessionRef
from agent_sessions.providers.tmux import TmuxProvider, TmuxServer, report_orphans

from .conftest import agent_session, converged, is_ready, socket_file, wait_session, wait_until


def ref(name: str = "demo", namespace: str = "default", **config: object) -> SessionRef:
    config.setdefault("provider", "tmux")
    config.setdefault("agent", {"command": ["unused"]})
    return SessionRef(namespace=namespace, name=name, uid=str(uuid.uuid4()), config=config)


def exiting_with(code: int, message: str = "") -> list[str]:
    """A stand-in for the bridge that prints `message` and exits `code` at once (no agent)."""
    return [sys.executable, "-c", f"import sys; print({message!r}, file=sys.stderr); sys.exit({code})"]


def test_same_name_in_two_namespaces_runs_side_by_side_and_a_restarted_operator_adopts_both(
    api, tmux: TmuxServer, workspace_root: Path, start_operator
):
    for namespace in ("team-a", "team-b"):
        api.create("namespaces", {"metadata": {"name": namespace}})
    first = start_operator()
    for namespace in ("team-a", "team-b"):
        api.create(c.SESSION_PLURAL, agent_session("demo", namespace))
    before = {ns: wait_session(api, ns, "demo", is_ready) for ns in ("team-a", "team-b")}

    running = {state.namespace: state for state in tmux.list()}
    assert set(running) == {"team-a", "team-b"}
    assert running["team-a"].name != running["team-b"].name
    assert all(running[ns].uid == before[ns]["metadata"]["uid"] for ns in running)
    assert all(running[ns].name.startswith(f"ags-{ns}-demo-") for ns in running)
    assert running["team-a"].workspace != running["team-b"].workspace
    assert {before[ns]["status"]["provider"]["id"] for ns in before} == {s.name for s in running.values()}

    first.stop()
    api.reset_requests()
    second = start_operator()
    wait_until(lambda: converged(second, [("team-a", "demo"), ("team-b", "demo")]))
    assert second.tmux_providers  # it did look at tmux (observe), and found both again

    assert [f"{r.method} {r.path}" for r in api.requests if r.is_write] == []
    after = {state.namespace: state for state in tmux.list()}
    assert {ns: (s.name, s.pid, s.port) for ns, s in after.items()} == {
        ns: (s.name, s.pid, s.port) for ns, s in running.items()
    }
    for namespace in ("team-a", "team-b"):
        current = api.get(c.SESSION_PLURAL, namespace, "demo")
        assert current["metadata"]["resourceVersion"] == before[namespace]["metadata"]["resourceVersion"]


def test_deleting_a_session_kills_its_tmux_session_and_removes_its_workspace(
    api, tmux: TmuxServer, workspace_root: Path, start_operator
):
    start_operator()
    api.create(c.SESSION_PLURAL, agent_session("short-lived"))
    wait_session(api, "default", "short-lived", is_ready)
    [state] = tmux.list()
    assert Path(state.workspace).is_dir()

    api.delete(c.SESSION_PLURAL, "default", "short-lived")
    wait_session(api, "default", "short-lived", lambda obj: obj is None)
    assert tmux.list() == []
    assert not Path(state.workspace).exists()


async def test_orphans_are_reported_and_killed_only_when_the_provider_reaps_them(
    socket_name: str, tmux: TmuxServer, workspace_root: Path
):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    provider = TmuxProvider(socket_name=socket_name, workspace_root=workspace_root, runtime_command=sleeper)
    kept, orphan = ref("kept"), ref("gone", namespace="team-b")
    await provider.ensure(kept)
    await provider.ensure(orphan)
    assert tmux.create("ags-made-by-hand", ["sleep", "60"], start_directory=workspace_root, options={})
    index = {("default", "kept"): [{"metadata": {"uid": kept.uid}}]}  # a kopf index: key → bodies

    assert await report_orphans(provider, index) == []  # too young to judge: the index may predate them
    reported = await report_orphans(provider, index, min_age_seconds=0)
    assert sorted(reported) == sorted([provider.tmux_name(orphan), "ags-made-by-hand"])
    assert REGISTRY.get_sample_value("agent_session_tmux_orphans") == 2
    assert len(tmux.list()) == 3  # reported, not removed

    assert await report_orphans(provider, index, namespaces=["default"], min_age_seconds=0) == []  # not ours to judge

    reaped_before = REGISTRY.get_sample_value("agent_session_tmux_orphans_reaped_total")
    reaper = TmuxProvider(socket_name=socket_name, workspace_root=workspace_root, reap_orphans=True)
    assert sorted(await report_orphans(reaper, index, min_age_seconds=0)) == sorted(reported)
    remaining = {state.name for state in tmux.list()}
    assert remaining == {provider.tmux_name(kept), "ags-made-by-hand"}  # never kills what it did not make
    assert REGISTRY.get_sample_value("agent_session_tmux_orphans_reaped_total") == reaped_before + 1
    assert REGISTRY.get_sample_value("agent_session_tmux_orphans") == 1


async def test_the_pane_exit_status_is_observed_after_the_bridge_ends(socket_name: str, workspace_root: Path):
    failing = TmuxProvider(socket_name=socket_name, workspace_root=workspace_root,
                           runtime_command=exiting_with(3, "cannot bind the port"))
    crashed = ref("crashed")
    await failing.ensure(crashed)

    async def ended(provider: TmuxProvider, session: SessionRef):
        while (observation := await provider.observe(session)).state == BackingState.RUNNING:
            await asyncio.sleep(0.02)
        return observation

    observation = await asyncio.wait_for(ended(failing, crashed), timeout=10)
    assert observation.state == BackingState.FAILED
    assert observation.exit_code == 3
    assert "exit code 3" in observation.message and "cannot bind the port" in observation.message
    assert await failing.ensure(crashed)  # still there (remain-on-exit): the lifecycle stops it first

    # A developer attaches and opens a window of their own: it is not taken for the runtime.
    TmuxServer(socket_name)._run("new-window", "-t", f"={failing.tmux_name(crashed)}:", "--", "sleep", "30")
    assert (await failing.observe(crashed)).state == BackingState.FAILED

    succeeding = TmuxProvider(socket_name=socket_name, workspace_root=workspace_root, runtime_command=exiting_with(0))
    completed = ref("completed")
    await succeeding.ensure(completed)
    observation = await asyncio.wait_for(ended(succeeding, completed), timeout=10)
    assert (observation.state, observation.exit_code) == (BackingState.SUCCEEDED, 0)

    await failing.stop(crashed)
    assert (await failing.observe(crashed)).state == BackingState.ABSENT


async def test_the_agent_gets_its_env_with_secrets_and_not_the_operators(
    api, api_client, socket_name: str, workspace_root: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OPERATOR_ONLY_CREDENTIAL", "must-not-leak")
    dump_env = [sys.executable, "-c",
                "import json, os, sys, time; workspace = sys.argv[sys.argv.index('--workspace') + 1];"
                "json.dump(dict(os.environ), open(os.path.join(workspace, 'env.json'), 'w')); time.sleep(60)"]
    provider = TmuxProvider(api_client, socket_name=socket_name, workspace_root=workspace_root, runtime_command=dump_env)
    session = ref(agent={"command": ["agent"], "env": [
        {"name": "GREETING", "value": "hello $(USER_NAME)"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
        {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}}},
    ], "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}]})
    api.create("configmaps", {"metadata": {"name": "settings", "namespace": "default"},
                              "data": {"USER_NAME": "ada", "MODE": "dev"}})

    with pytest.raises(ProviderUnavailable, match="secret default/creds not found"):
        await provider.ensure(session)  # waits for the Secret, as a pod would
    assert (await provider.observe(session)).state == BackingState.ABSENT

    api.create("secrets", {"metadata": {"name": "creds", "namespace": "default"}, "stringData": {"api-key": "k-123456"}})
    await provider.ensure(session)
    env_file = provider.workspace(session) / "env.json"
    wait_until(env_file.exists, timeout=10)
    env = wait_until(lambda: _json(env_file), timeout=10)

    assert env["API_KEY"] == "k-123456"
    assert env["CFG_MODE"] == "dev" and env["CFG_USER_NAME"] == "ada"
    assert env["GREETING"] == "hello $(USER_NAME)"  # only variables defined before it expand
    assert "OPTIONAL" not in env
    assert "OPERATOR_ONLY_CREDENTIAL" not in env
    assert (env["AGENT_SESSION_NAMESPACE"], env["AGENT_SESSION_NAME"], env["AGENT_SESSION_UID"]) == (
        "default", "demo", session.uid)
    # The host's PATH, behind the operator's own interpreter's scripts (`agent-sessions …` resolves
    # from an unactivated virtualenv, as with the local pod runner).
    assert env["PATH"] == os.pathsep.join((os.path.dirname(sys.executable), os.environ["PATH"]))
    assert list((workspace_root / ".launch").iterdir()) == []  # the launcher deleted its env file


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


async def test_a_tmux_session_of_the_same_name_that_is_not_the_sessions_is_never_adopted(
    socket_name: str, tmux: TmuxServer, workspace_root: Path
):
    provider = TmuxProvider(socket_name=socket_name, workspace_root=workspace_root)
    session = ref()
    assert tmux.create(provider.tmux_name(session), ["sleep", "60"], start_directory=workspace_root, options={})

    with pytest.raises(SessionAlreadyExists, match="not made by the operator"):
        await provider.ensure(session)
    assert (await provider.observe(session)).state == BackingState.ABSENT
    with pytest.raises(SessionNotFound):
        await provider.logs(session, 10, 1000)
    await provider.stop(session)
    assert await provider.delete(session)
    assert [state.name for state in tmux.list()] == [provider.tmux_name(session)]  # left alone


async def test_a_changed_socket_applies_at_the_next_start(socket_name: str, tmux: TmuxServer, workspace_root: Path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    provider = TmuxProvider(workspace_root=workspace_root, runtime_command=sleeper)
    other_socket = f"{socket_name}-new"
    try:
        session = ref(tmux={"socketName": socket_name})
        await provider.ensure(session)
        moved = SessionRef(namespace=session.namespace, name=session.name, uid=session.uid,
                           config={**session.config, "tmux": {"socketName": other_socket}})

        assert (await provider.observe(moved)).state == BackingState.RUNNING  # still found where it runs
        await provider.ensure(moved)
        assert [state.uid for state in tmux.list()] == [session.uid] and TmuxServer(other_socket).list() == []

        await provider.stop(moved)
        assert tmux.list() == []
        await provider.ensure(moved)
        assert [state.uid for state in TmuxServer(other_socket).list()] == [session.uid]
    finally:
        TmuxServer(other_socket).kill_server()
        socket_file(other_socket).unlink(missing_ok=True)
