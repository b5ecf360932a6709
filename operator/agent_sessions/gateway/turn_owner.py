"""Whose turn is it: the caller who started a turn, carried in the turn's message id (pure).

Why: `create agentsessions/messages` lets many users talk to one session, and the runtime runs one
turn at a time; cancel stops whatever turn is running. Without knowing who started it, any sender
could stop anyone's turn. The runtime already records every message's id in history (the
`user_message` frame's `messageId`, also what makes a retried id the same turn), so the gateway
makes that id say who sent it: every message it forwards gets the id `<owner>.<id>`, where
`<owner>` is `u` + 16 hex digits of the SHA-256 of the caller's Kubernetes user name and `<id>` is
the client's own id (or a random one). On cancel, the gateway reads the running turn's
`user_message` from history and cancels only if the owner is the caller; cancelling anyone else's
turn (the operator's `spec.prompt` delivery included) needs `create agentsessions/cancel`.

Scoping ids per caller also closes a leak: without it, a sender reusing another user's message id
got that user's reply (the runtime answers a repeated id with the turn it already ran). Each
replica computes the same owner, so this holds whichever replica the turn and the cancel reach.

The owner is a pseudonym, not a secret: whoever can read the session's history and guesses a user
name can check it. It is never trusted from a client: the gateway always prefixes, so an id a
client sends that looks scoped is scoped again under the client's own owner.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from agent_sessions.api.constants import MAX_MESSAGE_ID_LENGTH

OWNER_HEX = 16


def owner_tag(user: str) -> str:
    return "u" + hashlib.sha256(user.encode()).hexdigest()[:OWNER_HEX]


def scoped_message_id(user: str, client_id: str | None = None) -> str:
    """The id the runtime is given for `user`'s message: the client's id under the user's owner tag
    (a retry with the same id is still the same turn), a fresh one for a message without an id."""
    tag = owner_tag(user)
    if client_id is None:
        return f"{tag}.{uuid.uuid4().hex}"
    scoped = f"{tag}.{client_id}"
    if len(scoped) > MAX_MESSAGE_ID_LENGTH:  # still one id per client id, within the runtime's limit
        scoped = f"{tag}.sha256-{hashlib.sha256(client_id.encode()).hexdigest()}"
    return scoped


def owned(message: Mapping[str, Any], user: str) -> dict[str, Any]:
    """`message` (a `wire.message_request` message) with its id scoped to `user`."""
    client_id = message.get("id")
    return {**message, "id": scoped_message_id(user, client_id if isinstance(client_id, str) else None)}


def started_by(message_id: Any, user: str) -> bool:
    """Whether a turn's message id says `user` sent it through the gateway."""
    return isinstance(message_id, str) and message_id.startswith(owner_tag(user) + ".")
