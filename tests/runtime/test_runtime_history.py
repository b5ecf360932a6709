"""The runtime's history store: seq assignment, `after_seq`, and reloading after a restart or a crash."""

from __future__ import annotations

import errno
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


# -- no frame and no disk can break the history ------------------------------------------------------


def chunk(text: str) -> dict:
    return {"update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}}


def test_a_frame_with_a_lone_surrogate_is_stored_with_a_replacement_character(tmp_path):
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    frame = store.append("agent_message_chunk", chunk("bad \ud800 text"), time=T)
    assert frame["update"]["content"]["text"] == "bad \ufffd text", "memory and disk hold the same frame"
    store.append("done", {"stopReason": "end_turn", "usage": None, "n": float("nan")}, time=T)
    assert store.write_error is None
    store.close()
    again = HistoryStore.open(path)
    assert [f["seq"] for f in again] == [1, 2]
    assert again.after(0)[0]["update"]["content"]["text"] == "bad \ufffd text"
    assert again.after(0)[1]["n"] is None, "no NaN in history: not JSON"


def test_line_separators_and_control_characters_in_a_frame_survive_a_reload(tmp_path):
    text = "nul \x00 esc \x1b[31m bel \x07 ls \u2028 ps \u2029 nel \x85 fs \x1c vt \x0b del \x7f"
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    store.append("agent_message_chunk", chunk(text), time=T)
    store.append("done", {"stopReason": "end_turn", "usage": None}, time=T)
    store.close()
    again = HistoryStore.open(path)
    assert [f["seq"] for f in again] == [1, 2], "str.splitlines would have cut the frame at U+2028 and U+0085"
    assert again.after(0)[0]["update"]["content"]["text"] == text


def test_a_frame_too_deep_to_encode_keeps_its_seq_and_event(tmp_path):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    store = HistoryStore.open(tmp_path / "h.jsonl")
    frame = store.append("agent_message_chunk", {"update": {"sessionUpdate": "agent_message_chunk", "x": deep}}, time=T)
    assert frame["seq"] == 1 and frame["event"] == "agent_message_chunk" and "dropped" in frame
    assert store.append("done", {}, time=T)["seq"] == 2
    store.close()
    assert [f["seq"] for f in HistoryStore.open(tmp_path / "h.jsonl")] == [1, 2]


def _failing(store: HistoryStore, monkeypatch, error: Exception, *, partial: bytes | None = None) -> None:
    real = store._write_bytes

    def write(data: bytes) -> None:
        if partial is not None:
            real(data[: len(partial)])
        raise error

    monkeypatch.setattr(store, "_write_bytes", write)


def test_a_failed_write_keeps_the_frame_in_memory_and_says_why_until_a_write_works(tmp_path, monkeypatch):
    path = tmp_path / "h.jsonl"
    store = HistoryStore.open(path)
    store.append("user_message", {"update": {}}, time=T)
    _failing(store, monkeypatch, OSError(errno.ENOSPC, "No space left on device"), partial=b'{"seq":2,"ev')
    frame = store.append("agent_message_chunk", chunk("lost on disk"), time=T)
    assert frame["seq"] == 2 and store.last_seq == 2, "the running turn still gets its frame"
    assert store.write_error == f"cannot write to {path}: No space left on device"
    assert store.append("agent_message_chunk", chunk("also lost"), time=T)["seq"] == 3
    monkeypatch.undo()
    store.append("done", {"stopReason": "end_turn", "usage": None}, time=T)
    assert store.write_error is None, "a write that works clears the error"
    store.close()
    again = HistoryStore.open(path)
    assert [f["seq"] for f in again] == [1, 4], "the partly written frame does not swallow the next one"


def test_any_exception_of_the_writer_is_a_failed_write(tmp_path, monkeypatch):
    store = HistoryStore.open(tmp_path / "h.jsonl")
    _failing(store, monkeypatch, UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert store.append("done", {}, time=T)["seq"] == 1
    assert store.write_error is not None and "UnicodeEncodeError" in store.write_error


def test_a_history_that_cannot_be_read_is_not_appended_to(tmp_path):
    path = tmp_path / "h.jsonl"
    path.mkdir()  # reading it fails: IsADirectoryError
    store = HistoryStore.open(path)
    assert store.write_error is not None and store.write_error.startswith(f"cannot read {path}")
    assert store.append("done", {}, time=T)["seq"] == 1
    assert path.is_dir()


def test_a_history_that_cannot_be_opened_for_writing_is_retried_on_each_append(tmp_path, monkeypatch):
    path = tmp_path / "h.jsonl"
    real_open = type(path).open
    refuse = {"on": True}

    def open_(self, mode="r", *args, **kwargs):
        if refuse["on"] and self == path and "a" in mode:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(type(path), "open", open_)
    store = HistoryStore.open(path)
    assert store.write_error == f"cannot open {path} for writing: Permission denied"
    store.append("user_message", {"update": {}}, time=T)
    refuse["on"] = False
    store.append("done", {}, time=T)
    assert store.write_error is None
    store.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [2]
