"""The stale-read guard: a body our own write replaced is swapped for what the write returned."""

from __future__ import annotations

from agent_sessions.reconciler.own_writes import OwnWrites


def version(uid: str, rv: str, phase: str = "") -> dict:
    return {"metadata": {"uid": uid, "resourceVersion": rv}, "status": {"phase": phase}}


def test_a_body_our_write_replaced_reads_as_what_the_write_returned():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2", "Creating"))
    assert writes.freshest(version("a", "1")) == version("a", "2", "Creating")


def test_every_version_our_writes_replaced_is_stale_until_the_index_catches_up():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2", "Creating"))
    writes.remember(version("a", "2", "Creating"), version("a", "3", "Running"))
    assert writes.freshest(version("a", "1")) == version("a", "3", "Running")
    assert writes.freshest(version("a", "2")) == version("a", "3", "Running")


def test_a_newer_body_is_trusted_and_the_entry_dropped():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2"))
    assert writes.freshest(version("a", "7", "Stopped")) == version("a", "7", "Stopped")
    assert len(writes) == 0
    assert writes.freshest(version("a", "1")) == version("a", "1")  # nothing remembered any more


def test_other_sessions_are_untouched():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2"))
    assert writes.freshest(version("b", "1")) == version("b", "1")


def test_memory_is_bounded_oldest_session_first():
    writes = OwnWrites(limit=3)
    for uid in "abcd":
        writes.remember(version(uid, "1"), version(uid, "2"))
    assert len(writes) == 3
    assert writes.freshest(version("a", "1")) == version("a", "1")  # forgotten
    assert writes.freshest(version("d", "1")) == version("d", "2")


def test_a_session_that_is_gone_is_forgotten():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2"))
    writes.forget("a")
    assert len(writes) == 0


def test_what_a_write_returned_is_held_packed_without_managed_fields():
    """A burst's index lags behind thousands of our writes: each returned body is held until it
    catches up, so it is held small (issue 11: 40 MiB of transient heap at 2,000 sessions)."""
    import tracemalloc

    def returned(uid: str) -> dict:
        body = version(uid, "2", "Running")
        body["metadata"]["managedFields"] = [
            {"manager": f"agent-sessions-{i}", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {f"f:status{i}": {"f:phase": {}, "f:conditions": {}, "f:info": {}}}} for i in range(20)
        ]
        return body

    writes = OwnWrites()
    count = 500
    tracemalloc.start()
    try:
        for i in range(count):  # each returned body is dropped by the caller: only what is held stays
            writes.remember(version(f"uid-{i}", "1"), returned(f"uid-{i}"))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / count < 1024, f"{held / count:.0f} bytes held per session"
    fresh = writes.freshest(version("uid-7", "1"))
    assert fresh == version("uid-7", "2", "Running")  # managedFields left out, the rest intact
    fresh["status"]["phase"] = "changed by the caller"
    assert writes.freshest(version("uid-7", "1"))["status"]["phase"] == "Running"  # a copy each time


def test_the_echo_of_our_writes_is_told_from_anyone_elses_change():
    writes = OwnWrites()
    writes.remember(version("a", "1"), version("a", "2"))  # e.g. the finalizer
    writes.remember(version("a", "2"), version("a", "3", "Creating"))  # then the status
    assert writes.echoed("a", "2")  # a state we already wrote past
    assert not writes.echoed("a", "9")  # someone else's change
    assert not writes.echoed("b", "2")  # another session
    assert not writes.echoed("a", "")  # no resourceVersion: never ours
    assert len(writes) == 1
    assert writes.echoed("a", "3")  # our last write: the index caught up…
    assert len(writes) == 0  # …so nothing is held for the session any more
    assert not writes.echoed("a", "3")
