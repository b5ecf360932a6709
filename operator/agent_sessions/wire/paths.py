"""The runtime bridge's HTTP paths: what the runtime serves and what every client of it calls
(the operator, the gateway, the pod provider's probes, the tmux provider's health watch)."""

from __future__ import annotations

from typing import Final

HEALTH_PATH: Final = "/healthz"
"""Liveness and readiness: 200 once the agent answers, 503 with the reason otherwise."""
INFO_PATH: Final = "/v1/info"
MESSAGES_PATH: Final = "/v1/messages"
HISTORY_PATH: Final = "/v1/history"
CANCEL_PATH: Final = "/v1/cancel"
