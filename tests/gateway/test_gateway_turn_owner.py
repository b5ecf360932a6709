"""Whose turn it is: message ids scoped to the caller who sent them (`gateway.turn_owner`)."""

from __future__ import annotations

import pytest

from agent_sessions.api.constants import MAX_MESSAGE_ID_LENGTH
from agent_sessions.gateway.turn_owner import owned, owner_tag, scoped_message_id, started_by


def test_a_client_id_is_kept_under_the_senders_owner_so_a_retry_is_still_one_turn():
    assert scoped_message_id("alice", "m-1") == scoped_message_id("alice", "m-1") == f"{owner_tag('alice')}.m-1"


def test_two_users_with_the_same_client_id_are_two_messages():
    # Without scoping, bob reusing alice's id would get alice's reply from the runtime.
    assert scoped_message_id("alice", "m-1") != scoped_message_id("bob", "m-1")


def test_a_message_without_an_id_gets_a_fresh_one_of_its_sender():
    first, second = scoped_message_id("alice"), scoped_message_id("alice")
    assert first != second and started_by(first, "alice") and started_by(second, "alice")


def test_a_long_client_id_stays_within_the_runtimes_limit_and_stable():
    long = "x" * MAX_MESSAGE_ID_LENGTH
    scoped = scoped_message_id("alice", long)
    assert len(scoped) <= MAX_MESSAGE_ID_LENGTH and scoped == scoped_message_id("alice", long)
    assert started_by(scoped, "alice") and scoped != scoped_message_id("alice", long[:-1] + "y")


@pytest.mark.parametrize(("message_id", "user", "expected"), [
    (f"{owner_tag('alice')}.m", "alice", True),
    (f"{owner_tag('alice')}.m", "bob", False),
    (owner_tag("alice"), "alice", False),  # no separator: not a gateway id
    ("operator-prompt-1", "alice", False),
    (None, "alice", False),
    (7, "alice", False),
])
def test_started_by(message_id, user, expected):
    assert started_by(message_id, user) is expected


def test_an_id_that_claims_another_owner_is_scoped_again_under_the_sender():
    forged = scoped_message_id("bob", f"{owner_tag('alice')}.m")
    assert started_by(forged, "bob") and not started_by(forged, "alice")


def test_owned_sets_the_scoped_id_and_leaves_the_rest():
    message = {"text": "hi", "id": "m"}
    assert owned(message, "alice") == {"text": "hi", "id": f"{owner_tag('alice')}.m"}
    assert message == {"text": "hi", "id": "m"}
    assert started_by(owned({"text": "hi"}, "alice")["id"], "alice")
