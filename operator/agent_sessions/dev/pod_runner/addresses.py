"""A loopback address per pod, so every pod can listen on the same port as on a cluster."""

from __future__ import annotations

import socket
import threading
from typing import Final





HOST_IP: Final = "127.0.0.1"


class LoopbackAddresses:
    """127.0.0.`first`–127.0.0.`last`, one per live pod. Handed out round-robin rather than
    lowest-free, so an address just released (that a client may still hold as a stale endpoint)
    is the last to be given again.

    With `busy_port`, an address on which some process of this machine already listens on that
    port is passed over while another is free: every pod runner starts at 127.0.0.2, so a second
    one (another `agent-sessions dev`, a test suite beside it) would otherwise give its pods
    addresses whose port the first one's pods hold — they would fail to listen, and the pod's
    readiness probe would be answered by the other runner's pod."""

    def __init__(self, first: int = 2, last: int = 254, *, busy_port: int | None = None) -> None:
        self._first, self._size = first, last - first + 1
        self._busy_port = busy_port
        self._next = 0
        self._in_use: set[int] = set()
        self._waiters: set[threading.Event] = set()
        self._lock = threading.Lock()

    def acquire(self, waiter: threading.Event | None = None) -> str | None:
        """A free address, or None when all are taken (`waiter` is then set on the next release)."""
        with self._lock:
            free = [index for index in ((self._next + step) % self._size for step in range(self._size))
                    if index not in self._in_use]
            if not free:
                if waiter is not None:
                    self._waiters.add(waiter)
                return None
            # When the port is taken everywhere (something listens on 0.0.0.0), the pod gets an
            # address anyway: its process then fails to listen and says why in its log.
            index = next((i for i in free if not self._port_busy(self._address(i))), free[0])
            self._in_use.add(index)
            self._next = (index + 1) % self._size
            return self._address(index)

    def release(self, address: str) -> None:
        with self._lock:
            self._in_use.discard(int(address.rsplit(".", 1)[1]) - self._first)
            waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            waiter.set()

    def _address(self, index: int) -> str:
        return f"127.0.0.{self._first + index}"

    def _port_busy(self, address: str) -> bool:
        if self._busy_port is None:
            return False
        with socket.socket() as probe:
            try:
                probe.bind((address, self._busy_port))
            except OSError:
                return True
        return False
