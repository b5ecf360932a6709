"""Message requests (§7): `{"text"}` or `{"prompt": [ACP content blocks]}` with an optional `id`,
read with the same rules by the runtime and the gateway."""

from __future__ import annotations

import pytest

from agent_sessions.wire.message_request import (
    InvalidMessage,
    message_id_from_body,
    parse_message,
    prompt_from_body,
    prompt_text,
    too_large,
)


@pytest.mark.parametrize(
    ("body", "blocks"),
    [
        pytest.param({"text": "hi"}, [{"type": "text", "text": "hi"}], id="text"),
        pytest.param({"text": "  padded  "}, [{"type": "text", "text": "  padded  "}], id="text-kept-as-given"),
        pytest.param({"prompt": [{"type": "text", "text": "a"}]}, [{"type": "text", "text": "a"}], id="prompt"),
        pytest.param(
            {"prompt": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]},
            [{"type": "image", "data": "AAAA", "mimeType": "image/png"}],
            id="image-block",
        ),
        pytest.param(
            {"prompt": [{"type": "resource_link", "name": "f", "uri": "file:///w/f"}, {"type": "text", "text": "see"}]},
            [{"type": "resource_link", "name": "f", "uri": "file:///w/f"}, {"type": "text", "text": "see"}],
            id="resource-link",
        ),
    ],
)
def test_accepted_bodies(body, blocks):
    assert prompt_from_body(body) == blocks


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="no-body"),
        pytest.param(["text"], id="not-an-object"),
        pytest.param({}, id="nothing"),
        pytest.param({"txt": "typo"}, id="unknown-key-only"),
        pytest.param({"text": ""}, id="empty-text"),
        pytest.param({"text": " \n\t"}, id="blank-text"),
        pytest.param({"text": None}, id="null-text"),
        pytest.param({"text": ["a"]}, id="text-not-a-string"),
        pytest.param({"prompt": []}, id="empty-prompt"),
        pytest.param({"prompt": "hi"}, id="prompt-not-a-list"),
        pytest.param({"prompt": [{"type": "video"}]}, id="unknown-block-type"),
        pytest.param({"prompt": [{"type": "text"}]}, id="text-block-without-text"),
        pytest.param({"prompt": [{"type": "text", "text": " "}]}, id="blank-prompt"),
        pytest.param({"text": "a", "prompt": [{"type": "text", "text": "b"}]}, id="both"),
    ],
)
def test_refused_bodies_are_invalid_requests(body):
    with pytest.raises(InvalidMessage) as caught:
        prompt_from_body(body)
    assert (caught.value.code, caught.value.status) == ("invalid_request", 422)
    assert str(caught.value)


def test_too_large_is_413_message_too_large():
    error = too_large(2_000_000)
    assert (error.code, error.status) == ("message_too_large", 413)
    assert "2000000 bytes" in str(error)


def test_prompt_text_joins_the_text_blocks():
    blocks = [{"type": "text", "text": "a"}, {"type": "image", "data": "x", "mimeType": "image/png"}, {"type": "text", "text": "b"}]
    assert prompt_text(blocks) == "a\nb"


@pytest.mark.parametrize(
    ("body", "message_id"),
    [({"text": "a"}, None), ({"text": "a", "id": None}, None), ({"text": "a", "id": "m-1"}, "m-1")],
)
def test_the_optional_message_id(body, message_id):
    assert message_id_from_body(body) == message_id


@pytest.mark.parametrize("bad", [7, "", "  ", "x" * 257, ["m"]])
def test_a_bad_message_id_is_an_invalid_request(bad):
    with pytest.raises(InvalidMessage):
        message_id_from_body({"text": "a", "id": bad})


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
    with pytest.raises(InvalidMessage) as caught:
        parse_message(raw)
    assert (caught.value.code, caught.value.status) == ("invalid_request", 422)
