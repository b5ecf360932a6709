"""Open watch and log-follow responses: woken from any thread, ended all at once on stop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field





@dataclass(eq=False)
class Stream:
    """An open watch or log-follow response.  ``notify`` and ``stop`` may be called from
    any thread; the response handler waits on ``wake`` in the server's loop."""

    loop: asyncio.AbstractEventLoop
    kind: str  # "watch", "log" or "wait"
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False

    def notify(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody waits
                self.loop.call_soon_threadsafe(self.wake.set)

    def stop(self) -> None:
        self.stopped = True
        self.notify()


class OpenStreams:
    """The streams a :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI` has open
    (a mixin: the server owns ``_streams`` and ``_streams_lock``)."""

    def _track(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.add(stream)

    def _untrack(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.discard(stream)

    def _open_streams(self, kind: str | None = None) -> list[Stream]:
        with self._streams_lock:
            return [s for s in self._streams if kind is None or s.kind == kind]
