"""A message request (§7): `{"text": "..."}` or `{"prompt": [<ACP content blocks>]}`, with an
optional client `id`.

The gateway and the runtime read a message with the same rules, so what the gateway lets through
is exactly what the runtime accepts: the size limit first (`Content-Length`, then the bytes as they
arrive), then JSON, then the content. Content blocks are validated against the ACP SDK's own
schema, so what the bridge accepts is exactly what an ACP agent must accept, and what it stores in
history is the normalised form the agent received.

The optional `id` makes a message idempotent: the runtime answers a repeated id with the turn it
already ran, never a new one, so a client (or the operator delivering `spec.prompt`) can retry,
directly or through the gateway, without a second turn. On the gateway's WebSocket a `send` frame's
`id` correlates the frame with its answers instead, and is not the message's (`id_field=None`).

Text is checked before anything stores or forwards it: a body that is not UTF-8, or a string
anywhere in the message (`text`, any field of any content block, `_meta` keys, the `id`) holding
a lone UTF-16 surrogate (a `\\ud800` escape without its pair, which no UTF-8 writer can encode),
is refused with 422 naming the field, the character and its position. The `id` may not contain
control characters either (it is an identifier, shown in logs and tools); text may (JSON
escapes them).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Union

from acp.schema import (
    AudioContentBlock,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    ResourceContentBlock,
    TextContentBlock,
)
from aiohttp import web
from pydantic import Field, TypeAdapter, ValidationError

from agent_sessions.api.constants import MAX_MESSAGE_ID_LENGTH

from .frames import lone_surrogate_at

MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest request body the runtime accepts (1 MiB); larger ones get 413 `message_too_large`."""
INVALID_REQUEST = "invalid_request"
MESSAGE_TOO_LARGE = "message_too_large"

_ContentBlock = Annotated[
    Union[TextContentBlock, ImageContentBlock, AudioContentBlock, ResourceContentBlock, EmbeddedResourceContentBlock],
    Field(discriminator="type"),
]
_BLOCKS = TypeAdapter(list[_ContentBlock])


class InvalidMessage(ValueError):
    """A message refused, with the HTTP status and error code to answer with."""

    def __init__(self, message: str, *, code: str = INVALID_REQUEST, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.field = field
        """The offending field's path in the body (`prompt[0].text`), when one field is to blame."""


def too_large(size: int | None = None, limit: int = MAX_MESSAGE_BYTES) -> InvalidMessage:
    what = f"{size} bytes" if size is not None else "larger than the limit"
    return InvalidMessage(
        f"the message is {what}; at most {limit} bytes are accepted", code=MESSAGE_TOO_LARGE, status=413
    )


def check_declared_size(request: web.BaseRequest, limit: int) -> None:
    """413 from `Content-Length` alone, before anything else is done for the request."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length, limit)


async def read_limited(request: web.BaseRequest, limit: int) -> bytes:
    """The body, refusing it as soon as it passes `limit` bytes (a chunked body has no
    `Content-Length` to check in advance)."""
    check_declared_size(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(raw: bytes | str) -> Any:
    """The body as JSON (None when empty); 422 when it is not UTF-8 or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1].hex()
        raise InvalidMessage(f"the body is not valid UTF-8: byte 0x{bad} at offset {exc.start}") from None
    except ValueError:
        raise InvalidMessage("the body is not valid JSON") from None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(what, path, string) of every string in a JSON value, depth first: `what` names the string
    (`"prompt[0].text"`, or `a key in "prompt[0]._meta"`), `path` is where it is."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield f'"{where}"', where, item
        elif isinstance(item, Mapping):
            entries = []
            for key, child in item.items():
                yield f'a key in "{where}"', where, str(key)
                entries.append((f"{where}.{json.dumps(str(key))[1:-1]}", child))
            stack.extend(reversed(entries))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{where}[{index}]", child) for index, child in enumerate(item)]))


def check_unicode(value: Any, field: str) -> None:
    """Refuse (422, naming the field and position) any string in `value` that UTF-8 cannot
    encode: a lone surrogate from a `\\uD800`-`\\uDFFF` escape without its pair."""
    for what, where, text in _strings(value, field):
        index = lone_surrogate_at(text)
        if index is not None:
            raise InvalidMessage(
                f"{what} is not valid Unicode: lone surrogate U+{ord(text[index]):04X} at character {index} "
                "(a \\u escape for U+D800-U+DFFF must be half of a high-low pair)",
                field=where,
            )


def _check_no_control_characters(text: str, field: str) -> None:
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            raise InvalidMessage(
                f'"{field}" must not contain control characters: U+{ord(char):04X} at character {index}', field=field
            )


def prompt_from_body(body: Any) -> list[dict[str, Any]]:
    """The ACP prompt (content blocks as JSON) a request body asks for; raises InvalidMessage."""
    if not isinstance(body, Mapping):
        raise InvalidMessage('expected a JSON object: {"text": "..."} or {"prompt": [...]}')
    has_text, has_prompt = "text" in body, "prompt" in body
    if has_text and has_prompt:
        raise InvalidMessage('give either "text" or "prompt", not both')
    if has_text:
        text = body["text"]
        if not isinstance(text, str):
            raise InvalidMessage(f'"text" must be a string, got {type(text).__name__}')
        check_unicode(text, "text")
        if not text.strip():
            raise InvalidMessage('"text" must not be empty')
        return [{"type": "text", "text": text}]
    if has_prompt:
        prompt = body["prompt"]
        if not isinstance(prompt, list) or not prompt:
            raise InvalidMessage('"prompt" must be a non-empty list of ACP content blocks')
        check_unicode(prompt, "prompt")
        try:
            blocks = _BLOCKS.validate_python(prompt)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            raise InvalidMessage(f'"prompt" is not a list of ACP content blocks: {where}: {first.get("msg")}') from None
        normalised = [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in blocks]
        if all(block.get("type") == "text" and not str(block.get("text", "")).strip() for block in normalised):
            raise InvalidMessage('"prompt" must not be empty')
        return normalised
    raise InvalidMessage('missing "text" (or "prompt")')


def message_id_from_body(body: Any, id_field: str = "id") -> str | None:
    """The client's optional message id (read from `id_field`): a repeated id is the same
    message, never a new turn."""
    if not isinstance(body, Mapping) or body.get(id_field) is None:
        return None
    message_id = body[id_field]
    if not isinstance(message_id, str) or not message_id.strip():
        raise InvalidMessage(f'"{id_field}" must be a non-empty string', field=id_field)
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage(f'"{id_field}" is longer than {MAX_MESSAGE_ID_LENGTH} characters', field=id_field)
    check_unicode(message_id, id_field)
    _check_no_control_characters(message_id, id_field)
    return message_id


def message_of(body: Any, *, id_field: str | None = "id") -> dict[str, Any]:
    """The message a JSON object (an HTTP body or a WebSocket `send` frame) asks to send, as the
    runtime is to be sent it: `{"text"}` as given, or `{"prompt"}` normalised, with its message
    `id` when it has one (read from `id_field`; None: the object's `id` is not the message's)."""
    blocks = prompt_from_body(body)
    message: dict[str, Any] = {"text": body["text"]} if "text" in body else {"prompt": blocks}
    message_id = message_id_from_body(body, id_field) if id_field is not None else None
    if message_id is not None:
        message["id"] = message_id
    return message


def parse_message(raw: bytes | str) -> dict[str, Any]:
    """`message_of` a request body; 422 when it is not JSON or not a message."""
    return message_of(json_body(raw))


def prompt_text(blocks: list[Mapping[str, Any]]) -> str:
    """The text blocks of a prompt, joined (what a plain CLI agent can be given)."""
    return "\n".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
