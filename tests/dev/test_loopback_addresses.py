"""Pod addresses of the local pod runner when another runner (another `agent-sessions dev`, a
test suite beside this one) already has pods listening on this machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from agent_sessions.dev.pod_runner import LoopbackAddresses

TIER = "unit"


@pytest.fixture
def listening() -> Iterator[tuple[socket.socket, int]]:
    """A socket listening on 127.0.0.2, at a port of its own."""
    with socket.socket() as server:
        server.bind(("127.0.0.2", 0))
        server.listen()
        yield server, server.getsockname()[1]


def test_an_address_whose_port_another_process_listens_on_is_passed_over(listening):
    _, port = listening
    addresses = LoopbackAddresses(first=2, last=4, busy_port=port)
    assert addresses.acquire() == "127.0.0.3"
    assert addresses.acquire() == "127.0.0.4"


def test_when_the_port_is_busy_everywhere_an_address_is_still_handed_out(listening):
    _, port = listening
    addresses = LoopbackAddresses(first=2, last=2, busy_port=port)
    assert addresses.acquire() == "127.0.0.2"  # its process will fail to listen, and say so
    assert addresses.acquire() is None


def test_without_a_busy_port_the_addresses_are_handed_out_in_turn(listening):
    _, port = listening
    addresses = LoopbackAddresses(first=2, last=3)
    assert [addresses.acquire(), addresses.acquire()] == ["127.0.0.2", "127.0.0.3"]
