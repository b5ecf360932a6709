"""The shared namespace watch behind the status stream, without a server: what a stream is sent
when it reads too slowly, when the watch re-lists, and which Last-Event-IDs can be resumed from."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.gateway.status_stream import NamespaceWatch, Subscriber

TIER = "unit"


def session(name: str, version: int, phase: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                           "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                                        "resourceVersion": str(version)}, "spec": {}}
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


class Objects:
    """The one call a NamespaceWatch makes before watching: the namespace's list."""

    def __init__(self, items: list[dict], version: int) -> None:
        self.items, self.version = items, version

    async def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict:
        return {"items": self.items, "metadata": {"resourceVersion": str(self.version)}}


async def listed(items: list[dict], version: int, *, replay: int = 100, queue: int = 100) -> NamespaceWatch:
    watch = NamespaceWatch(Objects(items, version), "ns", replay=replay, queue=queue)  # type: ignore[arg-type]
    await watch.relist(None)
    return watch


def parse(chunk: bytes) -> dict[str, Any]:
    fields = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n"))
    fields["data"] = json.loads(fields["data"])
    return fields


async def take(subscriber: Subscriber, n: int) -> list[dict[str, Any]]:
    messages = subscriber.messages()
    out = []
    async with asyncio.timeout(2):
        for _ in range(n):
            out.append(parse(await anext(messages)))
    return out


async def test_a_stream_reading_too_slowly_gets_reset_and_the_current_state_not_a_backlog():
    watch = await listed([session("a", 5, "Creating")], 5, queue=2)
    subscriber = watch.subscribe(None)
    await take(subscriber, 2)  # the state: added a, synced
    for version, phase in ((6, "Running"), (7, "Stopping"), (8, "Stopped")):
        watch.apply("MODIFIED", session("a", version, phase))

    assert len(subscriber.pending) == 0  # dropped at the third: nothing held for the slow stream
    messages = await take(subscriber, 3)
    assert [m["event"] for m in messages] == ["reset", "added", "synced"]
    assert messages[0]["data"]["reason"] == "lagged"
    assert messages[1]["data"]["info"]["phase"] == "Stopped" and messages[1]["data"]["resourceVersion"] == "8"
    assert messages[2]["id"] == "8"


async def test_a_relist_resets_every_stream_with_the_new_state():
    watch = await listed([session("a", 5, "Running"), session("b", 4, "Running")], 5)
    subscriber = watch.subscribe(None)
    await take(subscriber, 3)
    watch.objects.items, watch.objects.version = [session("b", 9, "Stopped")], 12  # type: ignore[attr-defined]
    await watch.relist("relisted")

    messages = await take(subscriber, 3)
    assert [m["event"] for m in messages] == ["reset", "added", "synced"]
    assert messages[0]["data"]["reason"] == "relisted"
    assert messages[1]["data"]["info"]["name"] == "b" and messages[2]["id"] == "12"
    assert watch.since("5") is None  # positions before the relist are gone


async def test_resume_positions_are_changes_bookmarks_and_the_list_while_kept():
    watch = await listed([session("a", 5)], 5, replay=4)
    watch.apply("MODIFIED", session("a", 6, "Running"))
    watch.apply("BOOKMARK", {"metadata": {"resourceVersion": "7"}})
    watch.apply("ADDED", session("b", 8))

    assert [change.version for change in watch.since("5")] == ["6", "8"]
    assert [change.version for change in watch.since("7")] == ["8"]
    assert watch.since("8") == []
    assert watch.since("3") is None and watch.since("not-a-version") is None

    watch.apply("DELETED", session("a", 9, "Running"))  # the list's position falls out (4 kept)
    assert watch.since("5") is None
    assert [(change.type, change.version) for change in watch.since("6")] == [("ADDED", "8"), ("DELETED", "9")]


async def test_a_watch_event_for_a_known_session_is_a_modification_and_an_unchanged_view_is_not_sent():
    watch = await listed([session("a", 5, "Running")], 5)
    subscriber = watch.subscribe("5")
    watch.apply("ADDED", session("a", 6, "Stopping"))  # e.g. a re-established watch
    watch.apply("MODIFIED", session("a", 7, "Stopping"))  # nothing in the summary changed
    watch.apply("MODIFIED", session("a", 8, "Stopped"))

    messages = await take(subscriber, 2)
    assert [(m["event"], m["id"]) for m in messages] == [("modified", "6"), ("modified", "8")]
    assert [change.version for change in watch.since("7")] == ["8"]  # still a position to resume from
