"""A loopback address per pod, so every pod can listen on the same port as on a cluster."""

from __future__ import annotations

import threading
from typing import Final





HOST_IP: Final = "127.0.0.1"


class LoopbackAddresses:
    """127.0.0.`first`–127.0.0.`last`, one per live pod. Handed out round-robin rather than
    lowest-free, so an address just released (that a client may still hold as a stale endpoint)
    is the last to be given again."""

    def __init__(self, first: int = 2, last: int = 254) -> None:
        self._first, self._size = first, last - first + 1
        self._next = 0
        self._in_use: set[int] = set()
        self._waiters: set[threading.Event] = set()
        self._lock = threading.Lock()

    def acquire(self, waiter: threading.Event | None = None) -> str | None:
        """A free address, or None when all are taken (`waiter` is then set on the next release)."""
        with self._lock:
            for step in range(self._size):
                index = (self._next + step) % self._size
                if index not in self._in_use:
                    self._in_use.add(index)
                    self._next = (index + 1) % self._size
                    return f"127.0.0.{self._first + index}"
            if waiter is not None:
                self._waiters.add(waiter)
            return None

    def release(self, address: str) -> None:
        with self._lock:
            self._in_use.discard(int(address.rsplit(".", 1)[1]) - self._first)
            waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            waiter.set()
