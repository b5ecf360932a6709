"""What a message body may be."""

from __future__ import annotations

import pytest

from agent_sessions.gateway.errors import GatewayError
from agent_sessions.gateway.message_body import parse_message


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"text": "hi"}', {"text": "hi"}),
    (b'{"text": "hi", "extra": 1}', {"text": "hi"}),
    (b'{"prompt": [{"type": "text", "text": "hi"}]}', {"prompt": [{"type": "text", "text": "hi"}]}),
    (b'{"prompt": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]}',
     {"prompt": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]}),
    (b'{"text": "hi", "id": "m-1"}', {"text": "hi", "id": "m-1"}),  # the id reaches the runtime
    (b'{"text": "hi", "id": null}', {"text": "hi"}),
])
def test_valid_messages(raw, message):
    assert parse_message(raw) == message


@pytest.mark.parametrize("raw", [
    b"", b"{", b"null", b"[]", b'"hi"', b"{}", b'{"text": ""}', b'{"text": "   "}', b'{"text": 5}',
    b'{"prompt": []}', b'{"prompt": "hi"}', b'{"prompt": [{"text": "no type"}]}', b'{"prompt": ["hi"]}',
    b'{"text": "a", "prompt": [{"type": "text", "text": "b"}]}',
    b'{"text": "hi", "id": ""}', b'{"text": "hi", "id": 7}', b'{"text": "hi", "id": "' + b"x" * 257 + b'"}',
])
def test_invalid_messages_are_422(raw):
    with pytest.raises(GatewayError) as caught:
        parse_message(raw)
    assert (caught.value.code, caught.value.status) == ("invalid_request", 422)
