"""The reference server of the http provider contract (`agent-sessions provider-server`).

A working external platform in a few hundred lines: it shows vendors what the contract means,
lets the http provider be tested end to end against something real, and fails on demand
(`faults`) so the operator's retry, backoff and `Retry-After` handling can be measured. Sessions
run the runtime bridge and its agent as local processes (`processes`); `sessions` holds the
contract's semantics, `store` their persistence, `http_api` the routes, `server` the lifecycle.
"""

from .faults import Fault, FaultBook
from .http_api import RequestRecord
from .server import ProviderServer, ProviderServerThread, running_provider_server
from .sessions import ContractError, LocalPlatform

__all__ = [
    "ContractError",
    "Fault",
    "FaultBook",
    "LocalPlatform",
    "ProviderServer",
    "ProviderServerThread",
    "RequestRecord",
    "running_provider_server",
]
