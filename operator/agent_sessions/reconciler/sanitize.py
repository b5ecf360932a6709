"""What the operator writes where people read it, made safe: every condition and health message,
title, session info and Event message is redacted (the Secrets the session references, and
credential-shaped strings) and stripped of control characters; titles become one printable line.

Pure, except `KnownSecrets`, which reads the session's Secrets at most once per reconcile and only
when something is about to be written (a converged session costs no read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from agent_sessions.api import constants as c
from agent_sessions.api.session import SessionInfoStatus
from agent_sessions.lifecycle.printable import printable_data, printable_line, printable_text
from agent_sessions.providers.redaction import redact

MAX_CONDITION_MESSAGE: Final = 32768
MAX_HEALTH_MESSAGE: Final = 4096
"""The status schema's bounds on the texts the sanitiser may lengthen (`[REDACTED]`)."""


class KnownSecrets:
    """The session's known secret values, read at most once per reconcile and only if needed."""

    def __init__(self, load: Callable[[], Awaitable[list[str]]]) -> None:
        self._load = load
        self._values: list[str] | None = None

    async def values(self) -> list[str]:
        if self._values is None:
            self._values = await self._load()
        return self._values


def clean_text(text: str, secret_values: Iterable[str]) -> str:
    """A message as a reader may see it: secrets redacted, control characters removed."""
    return printable_text(redact(text, secret_values))


def sanitized_status(status: dict[str, Any], secret_values: Iterable[str]) -> dict[str, Any]:
    """`status` (as dumped for the API) with every text a reader sees sanitised: condition and
    health messages and session info (`clean_text`), the title as one printable line. Not the
    log tail: its provider redacts it, with the same redactor and the Secrets the backing was
    given, before cutting it (redacting it again here would make it differ from every fresh read,
    and be written again each time)."""
    values = list(secret_values)
    out = dict(status)
    if out.get("conditions"):
        out["conditions"] = [
            {**cond, "message": clean_text(cond["message"], values)[:MAX_CONDITION_MESSAGE]}
            if cond.get("message") else cond
            for cond in out["conditions"]
        ]
    health = out.get("health")
    if health and health.get("message"):
        out["health"] = {**health, "message": clean_text(health["message"], values)[:MAX_HEALTH_MESSAGE]}
    if out.get("title"):
        out["title"] = printable_line(redact(out["title"], values))[: c.MAX_TITLE_LENGTH]
    info = out.get("sessionInfo")
    if info:
        info = dict(info)
        if info.get("title"):
            info["title"] = printable_line(redact(info["title"], values))[: c.MAX_TITLE_LENGTH]
        if info.get("meta"):
            info["meta"] = redacted_data(printable_data(info["meta"]), values)
        out["sessionInfo"] = info
    return out


def redacted_data(value: Any, secret_values: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secret_values)
    if isinstance(value, dict):
        return {key: redacted_data(item, secret_values) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted_data(item, secret_values) for item in value]
    return value


def printable_session_info(info: Mapping[str, Any]) -> SessionInfoStatus:
    """The agent's session info without control characters (the title is shown by `kubectl get`)."""
    cleaned = dict(info)
    if isinstance(cleaned.get("title"), str):
        cleaned["title"] = printable_line(cleaned["title"])[: c.MAX_TITLE_LENGTH] or None
    if isinstance(cleaned.get("updatedAt"), str):
        cleaned["updatedAt"] = printable_line(cleaned["updatedAt"])
    if "_meta" in cleaned or "meta" in cleaned:
        key = "_meta" if "_meta" in cleaned else "meta"
        cleaned[key] = printable_data(cleaned[key])
    return SessionInfoStatus.model_validate(cleaned)
