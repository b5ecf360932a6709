"""Providers: the I/O adapters that run sessions (§6) — pods, an external platform, tmux.

`base` defines the one protocol every provider implements, `errors` the typed failures, and
`registry` maps `config.provider` to a provider. `redaction` and `logs` are shared by every
provider's `logs()`. Each provider lives in its own package (`pod`, …) with its pure builders
apart from its I/O.

Imports only `api`, `config`, `lifecycle` (and `k8s`); never handlers or the CLI.
"""

from .base import Capabilities, Provider, ProviderRef, SessionRef, ValidationContext
from .errors import (
    InvalidConfiguration,
    ProviderError,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
)
from .logs import LogTail, bounded_log, tail
from .redaction import REDACTED, redact
from .registry import ProviderRegistry

__all__ = [
    "REDACTED",
    "Capabilities",
    "InvalidConfiguration",
    "LogTail",
    "Provider",
    "ProviderError",
    "ProviderRef",
    "ProviderRegistry",
    "ProviderUnavailable",
    "SessionAlreadyExists",
    "SessionNotFound",
    "SessionRef",
    "ValidationContext",
    "bounded_log",
    "redact",
    "tail",
]
