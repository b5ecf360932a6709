"""How much the bridge has written to its container log, as a mark the operator compares.

The operator keeps a session's log tail in its status; reading `pods/log` (and the Secrets that
redact it) for a session whose log did not change is waste (issue 11: a converged session costs
no request). Everything the bridge writes to its log goes through two places — its logging
handler (`cli.configure_logging`) and the copy of the agent's stderr (`agent_process`) — and each
counts its lines here. `GET /v1/info` reports `outputMark`: this process's random instance id and
the line count. The operator reads the log only when the mark differs from the one it saw when it
last read it; the instance id makes a restarted container (whose count starts again) a change.

Counting more than was written (other bridges in one test process) only costs a read; nothing
here can make the operator miss a line the bridge wrote through these two places.
"""

from __future__ import annotations

import logging
import secrets

INSTANCE = secrets.token_hex(8)
"""This process's id in the mark."""


class _Lines:
    count = 0


def wrote_lines(count: int = 1) -> None:
    _Lines.count += count


def output_mark() -> str:
    """`<instance>:<lines written so far>`."""
    return f"{INSTANCE}:{_Lines.count}"


class CountingFilter(logging.Filter):
    """Counts the records its handler writes (add it after the handler's other filters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        wrote_lines()
        return True
