"""The operator's client of a session's runtime bridge (§7): what the agent reports, and the prompt.

Every provider runs the same bridge inside the session, so this is provider-agnostic: given the
endpoint a provider observed, the operator reads `/v1/info` (session info, activity, message
count, and the bridge's view of the agent's health — a crashed agent or a refused session is
visible here even though the bridge itself is up) and delivers `spec.prompt`.

Prompt delivery is exactly-once by construction: the message carries an id derived from the
session uid, and the bridge answers a repeated id with the turn it already accepted instead of
prompting the agent again. So the operator can always retry — after a timeout, an error, or an
operator restart in the middle of a delivery — without ever sending the prompt twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .errors import ProviderUnavailable

INFO_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=2)


@dataclass(frozen=True)
class RuntimeInfo:
    """What `GET /v1/info` said."""

    session_info: dict[str, Any] = field(default_factory=dict)
    last_activity_time: str | None = None
    message_count: int | None = None
    health: dict[str, Any] = field(default_factory=dict)
    state: str = "idle"
    """`idle`, `busy` (a turn is running: the session is active right now), `starting`, `unhealthy`."""

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RuntimeInfo:
        info = body.get("sessionInfo") or {}
        return cls(
            session_info={k: v for k, v in info.items() if v is not None},
            last_activity_time=body.get("lastActivityTime"),
            message_count=body.get("messageCount"),
            health=body.get("health") or {},
            state=body.get("state") or "idle",
        )

    @property
    def healthy(self) -> bool:
        return self.health.get("status", "ok") == "ok"

    def health_message(self) -> str:
        """Why the agent is unhealthy, in one line: exit code, the agent's error, last stderr lines."""
        parts: list[str] = []
        if self.health.get("reason"):
            parts.append(str(self.health["reason"]))
        if self.health.get("exitCode") is not None:
            parts.append(f"exit code {self.health['exitCode']}")
        error = self.health.get("error") or {}
        if error:
            parts.append(f"agent error {error.get('code')}: {error.get('message')}")
        methods = self.health.get("authMethods") or []
        if methods:
            names = ", ".join(str(m.get("name") or m.get("id")) for m in methods if isinstance(m, dict))
            parts.append(f"auth methods: {names}")
        stderr = self.health.get("stderr") or []
        if stderr:
            parts.append("stderr: " + " | ".join(str(line) for line in stderr[-5:]))
        return "; ".join(parts) or "the agent is unhealthy"


@dataclass(frozen=True)
class Delivery:
    accepted: bool
    """The bridge has the message (now or from an earlier attempt)."""
    busy: bool = False
    """Another turn runs: try again later."""


class RuntimeClient:
    """HTTP calls to session runtimes; one aiohttp session for all of them."""

    def __init__(self, user_agent: str) -> None:
        self._headers = {"User-Agent": user_agent}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def info(self, endpoint: str) -> RuntimeInfo:
        try:
            async with self._client().get(f"{endpoint}/v1/info", timeout=INFO_TIMEOUT) as response:
                if response.status != 200:
                    raise ProviderUnavailable(f"the session runtime answered {response.status} to /v1/info")
                return RuntimeInfo.from_json(await response.json())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"the session runtime is unreachable: {type(exc).__name__}") from exc

    async def deliver(self, endpoint: str, text: str, message_id: str) -> Delivery:
        """Hand `text` to the agent as message `message_id` without waiting for the reply."""
        body = {"text": text, "id": message_id}
        try:
            async with self._client().post(
                f"{endpoint}/v1/messages", params={"wait": "false"}, json=body, timeout=DELIVERY_TIMEOUT
            ) as response:
                if response.status in (200, 202):
                    return Delivery(accepted=True)
                if response.status == 409:
                    return Delivery(accepted=False, busy=True)
                raise ProviderUnavailable(f"the session runtime answered {response.status} to the prompt")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"the session runtime is unreachable: {type(exc).__name__}") from exc
