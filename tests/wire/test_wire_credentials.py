"""The runtime key and what is derived from it (wire.credentials): tokens and wake signatures."""

from __future__ import annotations

import pytest

from agent_sessions.wire import credentials as cr

pytestmark = pytest.mark.unit

KEY = bytes(range(32))


def test_a_token_is_stable_for_a_uid_and_differs_between_uids_and_keys():
    token = cr.session_token(KEY, "uid-1")
    assert token == cr.session_token(KEY, "uid-1")
    assert len(token) == 43 and token.replace("-", "").replace("_", "").isalnum()
    assert token != cr.session_token(KEY, "uid-2")
    assert token != cr.session_token(bytes(reversed(KEY)), "uid-1")


def test_a_token_needs_a_uid_and_a_full_length_key():
    with pytest.raises(ValueError, match="uid"):
        cr.session_token(KEY, "")
    with pytest.raises(ValueError, match="at least 32 bytes, got 16"):
        cr.session_token(KEY[:16], "uid-1")


def test_a_wake_signature_binds_every_field():
    fields = ("team-a", "demo", "uid-1", "2026-12-06T05:00:00.000000001Z")
    signature = cr.wake_signature(KEY, *fields)
    assert cr.wake_signature_valid(KEY, *fields, signature)
    for index in range(len(fields)):
        changed = list(fields)
        changed[index] += "x"
        assert not cr.wake_signature_valid(KEY, *changed, signature), f"field {index} not bound"
    assert not cr.wake_signature_valid(KEY, *fields, "")
    assert not cr.wake_signature_valid(KEY, *fields, "é" * 43)
    assert not cr.wake_signature_valid(bytes(reversed(KEY)), *fields, signature)


def test_bearer_headers_are_parsed_strictly_and_compared_in_constant_time():
    assert cr.bearer("Bearer abc") == "abc"
    assert cr.bearer("bearer  abc ") == "abc"
    assert cr.bearer("Basic abc") is None
    assert cr.bearer("Bearer ") is None
    assert cr.bearer(None) is None
    assert cr.token_matches("abc", "abc")
    assert not cr.token_matches("abc", "abd")
    assert not cr.token_matches("abc", None)
    assert not cr.token_matches("abc", "ab\udc80")
