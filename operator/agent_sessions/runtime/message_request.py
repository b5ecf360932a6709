"""Reading `POST /v1/messages`: `{"text": "..."}` or `{"prompt": [<ACP content blocks>]}` (§7).

Content blocks are validated against the ACP SDK's own schema, so what the bridge accepts is
exactly what an ACP agent must accept, and what it stores in history is the normalised form
the agent received.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from acp.schema import (
    AudioContentBlock,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    ResourceContentBlock,
    TextContentBlock,
)
from pydantic import Field, TypeAdapter, ValidationError

from agent_sessions.api.constants import MAX_MESSAGE_ID_LENGTH

MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB); larger ones get 413 `message_too_large`."""

_ContentBlock = Annotated[
    Union[TextContentBlock, ImageContentBlock, AudioContentBlock, ResourceContentBlock, EmbeddedResourceContentBlock],
    Field(discriminator="type"),
]
_BLOCKS = TypeAdapter(list[_ContentBlock])


class InvalidMessage(ValueError):
    """A message the bridge refuses, with the HTTP status and error code to answer with."""

    def __init__(self, message: str, *, code: str = "invalid_request", status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def too_large(size: int | None = None) -> InvalidMessage:
    what = f"{size} bytes" if size is not None else "larger than the limit"
    return InvalidMessage(
        f"the message is {what}; at most {MAX_MESSAGE_BYTES} bytes are accepted",
        code="message_too_large",
        status=413,
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
        if not text.strip():
            raise InvalidMessage('"text" must not be empty')
        return [{"type": "text", "text": text}]
    if has_prompt:
        prompt = body["prompt"]
        if not isinstance(prompt, list) or not prompt:
            raise InvalidMessage('"prompt" must be a non-empty list of ACP content blocks')
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


def message_id_from_body(body: Any) -> str | None:
    """The client's optional message `id`: a repeated id is the same message, never a new turn."""
    if not isinstance(body, Mapping) or body.get("id") is None:
        return None
    message_id = body["id"]
    if not isinstance(message_id, str) or not message_id.strip():
        raise InvalidMessage('"id" must be a non-empty string')
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage(f'"id" is longer than {MAX_MESSAGE_ID_LENGTH} characters')
    return message_id


def prompt_text(blocks: list[Mapping[str, Any]]) -> str:
    """The text blocks of a prompt, joined (what a plain CLI agent can be given)."""
    return "\n".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
