"""The runtime's history store: seq assignment, `after_seq`, and reloading after a restart or a crash."""

from __future__ import annotations

import json

from agent_sessions.runtime.history import HistoryStore
from agent_sessions.runtime.workspace import WorkspaceState, load_state, save_state

T = "2026-01-01T00:00:00Z"


def fill(store: HistoryStore, count: int) -> None:
    for index in range(count):
        store.append("agent_message_chunk", {"update": {"sessionUpdate": "agent_message_chunk", "n": index}}, time=T)


def test_seq_starts_at_one_and_increases_by_one(tmp_path):
    store = HistoryStore.open(tmp_path / "h.jsonl")
    assert store.last_seq == 0
    first = store.append("user_message", {"update": {}}, time=T)
    second = store.append("done", {"stopReason": "end_turn", "usage": None}, time=T)
    assert (first["seq"], second["seq"], store.last_seq) == (1, 2, 2)
    assert second == {"seq": 2, "event": "done", "time": T, "stopReason": "end_turn", "usage": None}


def test_after_returns_later_frames_up_to_a_limit(tmp_path):
    store = HistoryStore.open(tmp_path / "h.jsonl")
    fill(store, 5)
    assert [f["seq"] for f in store.after(0)] == [1, 2, 3, 4, 5]
    assert [f["seq"] for f in store.after(3)] == [4, 5]
    assert [f["seq"] for f in store.after(1, limit=2)] == [2, 3]
    assert store.after(5) == [] and store.after(99) == []
    assert store.after(0, limit=0) == []


def test_every_frame_is_one_line_on_disk_as_soon_as_it_is_appended(tmp_path):
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    fill(store, 2)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]
    store.close()


def test_a_reopened_store_continues_the_seq(tmp_path):
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    fill(store, 3)
    store.close()
    again = HistoryStore.open(path)
    assert again.last_seq == 3 and len(again) == 3
    assert again.append("done", {}, time=T)["seq"] == 4
    again.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_partial_last_line_from_a_killed_bridge_is_cut_off(tmp_path):
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    fill(store, 2)
    store.close()
    with path.open("a") as handle:
        handle.write('{"seq": 3, "event": "agent_mes')
    again = HistoryStore.open(path)
    assert again.last_seq == 2
    again.append("done", {}, time=T)
    again.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_unreadable_and_out_of_order_lines_are_skipped(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(
        '{"seq": 1, "event": "a"}\nnot json\n[1, 2]\n{"seq": 1, "event": "dup"}\n{"event": "no-seq"}\n\n{"seq": 5, "event": "b"}\n'
    )
    store = HistoryStore.open(path)
    assert [(f["seq"], f["event"]) for f in store] == [(1, "a"), (5, "b")]
    assert store.append("c", {}, time=T)["seq"] == 6
    store.close()


def test_workspace_state_round_trips_and_tolerates_a_bad_file(tmp_path):
    assert load_state(tmp_path) == WorkspaceState()
    save_state(tmp_path, WorkspaceState(acp_session_id="abc", protocol="acp"))
    assert load_state(tmp_path) == WorkspaceState(acp_session_id="abc", protocol="acp")
    assert json.loads((tmp_path / ".agent-session" / "state.json").read_text()) == {"acpSessionId": "abc", "protocol": "acp"}
    (tmp_path / ".agent-session" / "state.json").write_text("{oops")
    assert load_state(tmp_path) == WorkspaceState()
