"""tmux session and workspace names: stable, distinct per session, safe for tmux targets and paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_sessions.providers.tmux import tmux_session_name, workspace_path
from agent_sessions.providers.tmux.names import is_provider_session, uid_hash

UID = "0b6c3a1e-8f5d-4c1b-9a77-3f2f1e0d9c8b"
TMUX_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_the_name_is_prefix_namespace_name_and_a_hash_of_the_uid():
    assert tmux_session_name("team-a", "demo", UID) == f"ags-team-a-demo-{uid_hash('team-a', 'demo', UID)}"


def test_the_name_is_stable_for_one_session():
    assert tmux_session_name("team-a", "demo", UID) == tmux_session_name("team-a", "demo", UID)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("team-a", "demo", UID), ("team-b", "demo", UID)),  # same name, two namespaces
        (("team-a", "demo", UID), ("team-a", "demo", "another-uid")),  # re-created session
        (("a-b", "c", UID), ("a", "b-c", UID)),  # same text once joined
        (("team-a", "web.v1", UID), ("team-a", "web-v1", UID)),  # same text once sanitized
    ],
)
def test_distinct_sessions_never_share_a_name(one, other):
    assert tmux_session_name(*one) != tmux_session_name(*other)


@pytest.mark.parametrize("name", ["demo", "web.v1.example.com", "x" * 253, "a..b", "UPPER"])
def test_names_are_tmux_safe_and_bounded(name):
    result = tmux_session_name("n" * 63, name, UID)
    assert TMUX_SAFE.match(result), result
    assert len(result) <= 80
    assert result.startswith("ags-") and result.endswith(uid_hash("n" * 63, name, UID))
    assert is_provider_session(result)


def test_only_prefixed_names_are_the_providers():
    assert not is_provider_session("agsomething")
    assert not is_provider_session("main")


def test_the_workspace_is_per_namespace_and_session_and_stays_under_the_root():
    root = Path("/var/ags")
    path = workspace_path(root, "team-a", "demo", UID)
    assert path == root / "team-a" / f"demo-{uid_hash('team-a', 'demo', UID)}"
    assert workspace_path(root, "team-b", "demo", UID).parent != path.parent
    assert workspace_path(root, "team-a", "demo", "other").name != path.name
    assert root in workspace_path(root, "..", "../../etc", UID).parents
