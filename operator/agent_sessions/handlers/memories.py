"""kopf's per-object memory, kept only for the kinds kopf indexes.

kopf keeps a `ResourceMemory` for every object it has ever seen an event of, until its deletion
(a memo, an error throttler, an indexing and a daemons record: ~0.9 KiB each). Its only readers
are daemons, timers, resuming change handlers and indexes; the operator gives kopf raw event
handlers only (Secrets, ConfigMaps and wake-request Events; sessions, templates and pods are
followed by its own informers, `k8s.informer`) and no index. So for every kind the memory is made
for the event and dropped after it (kopf's own `ephemeral` memories): at 10,000 sessions that was
~18 MiB less (issue 11), and the objects' uids are not kept either.

What an event-only kind loses: kopf's error throttler, which delays the next event of an object
whose *processing* (not a handler) failed; the handlers here do not raise (`trigger` only).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory  # kopf.operator(memories=…) takes one


class IndexedKindsMemories(ResourceMemories):
    """Memories remembered for objects of `kinds` (those with a kopf index) only."""

    def __init__(self, kinds: Collection[str]) -> None:
        super().__init__()
        self.kinds = frozenset(kinds)

    async def recall(self, raw_body: Any, *, memobase: Any = None, noticed_by_listing: bool = False,
                     ephemeral: bool = False) -> ResourceMemory:
        keep = raw_body.get("kind") in self.kinds
        return await super().recall(raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing,
                                    ephemeral=ephemeral or not keep)

    def __len__(self) -> int:
        return len(self._items)
