"""Reading a message request: size limit first, then shape (§7).

The gateway checks only what it must to fail early and cheaply — the size, that the body is JSON,
and that it holds a non-empty `text` or a non-empty `prompt` list of content blocks. The runtime
validates the blocks themselves against the ACP schema; its 422 is relayed as it is. The client's
optional message `id` is passed on: the runtime answers a repeated id with the turn it already
ran, so a client retrying through the gateway never starts a second turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from agent_sessions.api.constants import MAX_MESSAGE_ID_LENGTH

from .errors import INVALID_REQUEST, MESSAGE_TOO_LARGE, GatewayError


def too_large(limit: int, size: int | None = None) -> GatewayError:
    what = f"{size} bytes" if size is not None else "larger than the limit"
    return GatewayError(MESSAGE_TOO_LARGE, f"the message is {what}; at most {limit} bytes are accepted")


def check_declared_size(request: web.BaseRequest, limit: int) -> None:
    """413 from `Content-Length` alone, before anything else is done for the request."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, request.content_length)


async def read_limited(request: web.BaseRequest, limit: int) -> bytes:
    """The body, refusing it as soon as it passes `limit` bytes (a chunked body has no
    `Content-Length` to check in advance)."""
    check_declared_size(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_message(raw: bytes | str) -> dict[str, Any]:
    """The message a body asks to send, `{"text": ...}` or `{"prompt": [...]}`; 422 otherwise."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise GatewayError(INVALID_REQUEST, "the body is not valid JSON") from None
    return message_of(body)


def message_of(body: Any, *, id_field: str | None = "id") -> dict[str, Any]:
    """The `text`/`prompt` part of a JSON object (an HTTP body or a WebSocket `send` frame), with
    its message id when it has one (read from `id_field`: on the WebSocket, `id` correlates a
    frame with its answers and is not the message's)."""
    if not isinstance(body, Mapping):
        raise GatewayError(INVALID_REQUEST, 'expected a JSON object: {"text": "..."} or {"prompt": [...]}')
    message = _content_of(body)
    if id_field is not None and body.get(id_field) is not None:
        message_id = body[id_field]
        if not isinstance(message_id, str) or not message_id.strip():
            raise GatewayError(INVALID_REQUEST, f'"{id_field}" must be a non-empty string')
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            raise GatewayError(INVALID_REQUEST, f'"{id_field}" is longer than {MAX_MESSAGE_ID_LENGTH} characters')
        message["id"] = message_id
    return message


def _content_of(body: Mapping[str, Any]) -> dict[str, Any]:
    has_text, has_prompt = "text" in body, "prompt" in body
    if has_text and has_prompt:
        raise GatewayError(INVALID_REQUEST, 'give either "text" or "prompt", not both')
    if has_text:
        text = body["text"]
        if not isinstance(text, str) or not text.strip():
            raise GatewayError(INVALID_REQUEST, '"text" must be a non-empty string')
        return {"text": text}
    if has_prompt:
        prompt = body["prompt"]
        if not isinstance(prompt, list) or not prompt:
            raise GatewayError(INVALID_REQUEST, '"prompt" must be a non-empty list of ACP content blocks')
        for index, block in enumerate(prompt):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise GatewayError(INVALID_REQUEST,
                                   f'"prompt"[{index}] is not a content block (an object with a "type")')
        return {"prompt": list(prompt)}
    raise GatewayError(INVALID_REQUEST, 'missing "text" (or "prompt")')
