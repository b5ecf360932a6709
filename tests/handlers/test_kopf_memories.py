"""kopf remembers only the objects it indexes (`handlers.memories`): none, since sessions,
templates and pods are followed by the operator's informers. Secrets, ConfigMaps and wake Events
leave nothing behind in kopf once their event is handled (issue 11: ~0.9 KiB per object
otherwise, forever)."""

from __future__ import annotations

import asyncio

from agent_sessions.api import constants as c
from agent_sessions.handlers.memories import IndexedKindsMemories
from support.sessions import IMAGE, session, template
from support.waits import ready, wait_session, wait_until


def test_only_indexed_kinds_are_remembered() -> None:
    memories = IndexedKindsMemories({c.TEMPLATE_KIND})

    async def recall(kind: str, uid: str):
        return await memories.recall({"kind": kind, "metadata": {"uid": uid, "name": uid}})

    async def scenario() -> None:
        first = await recall(c.TEMPLATE_KIND, "t1")
        assert await recall(c.TEMPLATE_KIND, "t1") is first  # kept: the index's memory lives on
        session_memory = await recall(c.SESSION_KIND, "s1")
        assert await recall(c.SESSION_KIND, "s1") is not session_memory  # made per event
        await recall("Pod", "p1")
        assert len(memories) == 1

    asyncio.run(scenario())


def test_a_running_operator_leaves_nothing_in_kopfs_memories(api, operator) -> None:
    api.create(c.TEMPLATE_PLURAL, template("base", agent={"env": [{"name": "A", "value": "1"}]}))
    for name in ("mem-a", "mem-b", "mem-c"):
        api.create(c.SESSION_PLURAL, session(name, templateRef={"name": "base"},
                                             agent={"image": IMAGE, "command": ["agent-sessions", "demo-agent"]}))
    for name in ("mem-a", "mem-b", "mem-c"):
        wait_session(api, name, ready)
    # Sessions, their pods, the template and their token Secrets' neighbours have had events;
    # kopf keeps none of them, and the template is in the operator's own map.
    assert len(operator.runtime.kopf_memories) == 0
    assert set(operator.runtime.templates_of("default")) == {"base"}
    api.delete(c.TEMPLATE_PLURAL, "default", "base")
    wait_until(lambda: operator.runtime.templates_of("default") == {}, what="the deleted template to go")
