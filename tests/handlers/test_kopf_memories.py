"""kopf remembers only the objects it indexes (`handlers.memories`): templates. Sessions, their
pods, Secrets, ConfigMaps and wake Events leave nothing behind in kopf once their event is handled
(issue 11: ~0.9 KiB per object otherwise, forever)."""

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


def test_a_running_operator_remembers_templates_only(api, operator) -> None:
    api.create(c.TEMPLATE_PLURAL, template("base", agent={"env": [{"name": "A", "value": "1"}]}))
    for name in ("mem-a", "mem-b", "mem-c"):
        api.create(c.SESSION_PLURAL, session(name, templateRef={"name": "base"},
                                             agent={"image": IMAGE, "command": ["agent-sessions", "demo-agent"]}))
    for name in ("mem-a", "mem-b", "mem-c"):
        wait_session(api, name, ready)
    memories = operator.runtime.kopf_memories
    # Sessions and pods have had many events each by now; only the template is remembered.
    wait_until(lambda: len(memories) == 1, what="kopf's memories to hold the template only")
    api.delete(c.TEMPLATE_PLURAL, "default", "base")
    wait_until(lambda: len(memories) == 0, what="the deleted template's memory to go")
