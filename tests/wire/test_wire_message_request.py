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


# -- invalid Unicode is refused before anything stores or forwards it ------------------------------


@pytest.mark.parametrize(("raw", "field", "where"), [
    pytest.param(b'{"text": "\\ud800 lone"}', "text", 'U+D800 at character 0', id="text"),
    pytest.param(b'{"text": "ok \\udfff"}', "text", 'U+DFFF at character 3', id="low-half-alone"),
    pytest.param(b'{"text": "\\ude00\\ud83d"}', "text", 'U+DE00 at character 0', id="pair-in-the-wrong-order"),
    pytest.param(b'{"prompt": [{"type": "text", "text": "a"}, {"type": "text", "text": "b\\ud800"}]}',
                 "prompt[1].text", 'U+D800 at character 1', id="text-block"),
    pytest.param(b'{"prompt": [{"type": "resource_link", "name": "f", "uri": "file:///\\udc00"}]}',
                 "prompt[0].uri", 'U+DC00 at character 8', id="resource-link-uri"),
    pytest.param(b'{"prompt": [{"type": "resource", "resource": {"uri": "file:///a", "text": "x\\ud800"}}]}',
                 "prompt[0].resource.text", 'U+D800 at character 1', id="embedded-resource"),
    pytest.param(b'{"prompt": [{"type": "text", "text": "a", "_meta": {"k": ["\\ud800"]}}]}',
                 "prompt[0]._meta.k[0]", 'U+D800 at character 0', id="meta-value"),
    pytest.param(b'{"prompt": [{"type": "text", "text": "a", "_meta": {"\\ud800": 1}}]}',
                 "prompt[0]._meta", 'U+D800 at character 0', id="meta-key"),
    pytest.param(b'{"text": "a", "id": "m-\\ud800"}', "id", 'U+D800 at character 2', id="message-id"),
])
def test_a_lone_surrogate_anywhere_is_refused_naming_the_field_and_the_character(raw, field, where):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(raw)
    error = caught.value
    assert (error.code, error.status, error.field) == ("invalid_request", 422, field)
    assert "is not valid Unicode: lone surrogate " + where in str(error)
    assert f'"{field}"' in str(error)
    str(error).encode("utf-8")  # the error itself can be sent


def test_a_surrogate_written_as_utf8_bytes_is_refused_too():
    # json.loads decodes bytes with `surrogatepass`: ED A0 80 becomes U+D800 without any escape.
    with pytest.raises(InvalidMessage) as caught:
        parse_message(b'{"text": "raw \xed\xa0\x80"}')
    assert caught.value.field == "text" and "lone surrogate U+D800 at character 4" in str(caught.value)


def test_a_surrogate_pair_is_one_character_and_accepted():
    assert parse_message(b'{"text": "smile \\ud83d\\ude00"}') == {"text": "smile \U0001F600"}


def test_a_body_that_is_not_utf8_is_refused_naming_the_byte():
    with pytest.raises(InvalidMessage) as caught:
        parse_message(b'{"text": "caf\xe9"}')
    assert (caught.value.code, caught.value.status) == ("invalid_request", 422)
    assert str(caught.value) == "the body is not valid UTF-8: byte 0xe9 at offset 13"


def test_control_characters_are_text_but_not_an_id():
    assert parse_message(b'{"text": "bell \\u0007 esc \\u001b nul \\u0000"}') == {"text": "bell \a esc \x1b nul \x00"}
    for bad, code_point in (("a\nb", "U+000A at character 1"), ("\x00", "U+0000 at character 0"),
                            ("x\x1b[31m", "U+001B at character 1"), ("c1\x85", "U+0085 at character 2")):
        with pytest.raises(InvalidMessage) as caught:
            message_id_from_body({"text": "a", "id": bad})
        assert caught.value.field == "id"
        assert str(caught.value) == f'"id" must not contain control characters: {code_point}'


def test_the_gateways_websocket_frames_are_checked_too():
    from agent_sessions.wire.message_request import message_of

    with pytest.raises(InvalidMessage) as caught:
        message_of({"id": 1, "text": "\ud800"}, id_field=None)
    assert caught.value.field == "text"
