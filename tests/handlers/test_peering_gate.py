"""The peering gate pauses this replica exactly when kopf's peering rule would (HA, §9)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from agent_sessions.handlers.peering_gate import PeeringGate

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def peering(status: dict, *, name: str = "agent-session-operator", namespace: str | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "status": status}


def entry(priority: int, seen_ago: float = 1.0, lifetime: int = 60) -> dict:
    return {"priority": priority, "lifetime": lifetime, "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat()}


def gate(priority: int = 10, changes: list | None = None) -> PeeringGate:
    changes = changes if changes is not None else []
    return PeeringGate("me", priority, "agent-session-operator", on_change=changes.append, clock=lambda: NOW)


def test_paused_until_the_peering_objects_are_read_as_kopf_starts_a_mandatory_peering():
    changes: list[bool] = []
    g = gate(changes=changes)
    g.seen(None, peering({"me": entry(10)}))
    assert g.paused and changes == []
    g.listed()
    assert not g.paused and changes == [False]


def test_a_live_peer_of_a_higher_priority_pauses_and_its_death_or_departure_resumes():
    changes: list[bool] = []
    g = gate(changes=changes)
    g.listed()
    g.seen("MODIFIED", peering({"me": entry(10), "other": entry(20)}))
    assert g.paused and "higher priority" in g.reason
    g.seen("MODIFIED", peering({"me": entry(10), "other": entry(20, seen_ago=61)}))  # its lifetime is over
    assert not g.paused
    g.seen("MODIFIED", peering({"me": entry(10), "other": entry(20)}))
    g.seen("MODIFIED", peering({"me": entry(10)}))
    assert changes == [False, True, False, True, False]


def test_a_lower_priority_peer_leaves_it_active_and_the_same_priority_pauses_both():
    g = gate()
    g.listed()
    g.seen("MODIFIED", peering({"me": entry(10), "low": entry(5)}))
    assert not g.paused
    g.seen("MODIFIED", peering({"me": entry(10), "twin": entry(10)}))
    assert g.paused and "same priority" in g.reason


def test_other_peering_names_are_ignored_and_a_deleted_object_holds_no_peers():
    g = gate()
    g.listed()
    g.seen("ADDED", peering({"other": entry(99)}, name="someone-else"))
    assert not g.paused
    g.seen("ADDED", peering({"other": entry(99)}))
    assert g.paused
    g.seen("DELETED", peering({}))
    assert not g.paused


def test_namespaced_peerings_pause_when_any_namespace_has_a_higher_peer():
    g = gate()
    g.listed()
    g.seen(None, peering({"me": entry(10)}, namespace="a"))
    g.seen(None, peering({"me": entry(10), "other": entry(11)}, namespace="b"))
    assert g.paused
    g.seen("MODIFIED", peering({"me": entry(10)}, namespace="b"))
    assert not g.paused


def test_a_peering_resource_not_served_pauses_as_kopf_does_until_it_is():
    g = gate()
    g.listed()
    g.missing("", True)
    assert g.paused and "not served" in g.reason
    g.missing("", False)
    assert not g.paused


def test_entries_of_odd_shapes_neither_crash_nor_count_as_dead():
    g = gate()
    g.listed()
    g.seen("MODIFIED", peering({"me": entry(10), "odd": "text", "nolast": {"priority": "20"}}))
    assert g.paused  # kopf takes a peer without `lastseen` as seen now
    g.seen("MODIFIED", peering({"me": entry(10), "bad": {"priority": 30, "lastseen": "not a time"}}))
    assert g.paused
