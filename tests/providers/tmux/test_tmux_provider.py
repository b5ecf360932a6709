"""TmuxProvider decisions that need no tmux: a missing tmux binary, and the workspace guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_sessions.providers import ProviderUnavailable, SessionRef
from agent_sessions.providers.tmux import TmuxProvider, default_workspace_root

SESSION = SessionRef(namespace="team-a", name="demo", uid="u-1",
                     config={"provider": "tmux", "agent": {"command": ["agent"]}, "tmux": {"socketName": "s"}})


async def test_without_tmux_on_the_host_the_provider_is_unavailable(tmp_path: Path):
    provider = TmuxProvider(workspace_root=tmp_path, tmux_bin=str(tmp_path / "no-tmux"))
    with pytest.raises(ProviderUnavailable, match="tmux is not installed"):
        await provider.observe(SESSION)
    with pytest.raises(ProviderUnavailable, match="tmux is not installed"):
        await provider.ensure(SESSION)


def test_sessions_go_to_the_socket_their_config_names_else_the_providers(tmp_path: Path):
    provider = TmuxProvider(socket_name="fallback", workspace_root=tmp_path)
    assert provider.server_for(SESSION.config).socket_name == "s"
    assert provider.server_for({}).socket_name == "fallback"
    assert TmuxProvider(workspace_root=tmp_path).server_for({}).socket_name == "agent-sessions"


def test_the_default_workspace_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_workspace_root() == tmp_path / "agent-sessions" / "tmux"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_workspace_root() == Path.home() / ".local" / "state" / "agent-sessions" / "tmux"


def test_the_workspace_is_under_the_root(tmp_path: Path):
    provider = TmuxProvider(workspace_root=tmp_path)
    assert provider.workspace(SESSION).parent.parent == tmp_path
