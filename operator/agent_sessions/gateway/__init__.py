"""The session gateway (`agent-sessions gateway`, §7): how users talk to running sessions.

Stateless and horizontally scalable: every request learns the AgentSession it names from the
Kubernetes API (a GET, or for a serving session the replica's watch of its namespace,
`serving_index`) and talks to that session's runtime at `status.provider.endpoint`; nothing a
request needs lives only in a replica (caches of auth answers, the serving index and history
pollers are per replica and only save work). Sessions are addressed by their Kubernetes names, and everything the gateway sends about a
session carries `session: {"namespace", "name", "uid"}` from the AgentSession — never what the
runtime says about itself — and the runtime's per-session monotonic `seq`.

| endpoint | needs | answer |
|---|---|---|
| `GET /v1/namespaces/{ns}/sessions` | `list agentsessions` | `{"namespace", "items": [summary]}` |
| `GET /v1/namespaces/{ns}/sessions?watch=true` (`Last-Event-ID` to resume) | `watch agentsessions` | SSE: the sessions as `added`, `synced`, then `added`/`modified`/`deleted` per change, `id: <resourceVersion>`; `reset` when the client must start over (`status_stream`) |
| `GET …/sessions/{name}[?after_seq=N&limit=M]` | `get agentsessions` | `{"session", "info": summary, "detail", "runtime": /v1/info, "items": [frames], "lastSeq"}` (`runtime` null and no items unless Running; `detail`: `session_view.detail`) |
| `POST …/{name}/messages` `{"text"}` or `{"prompt": [blocks]}` | `create agentsessions/messages` | the runtime's reply `{"session", "seq", "stopReason", "text", "content", "usage"}` |
| `POST …/{name}/messages?stream=true` (or `Accept: text/event-stream`) | same | SSE: `id: <seq>`, `event: <kind>`, `data: {"session", "seq", "event", "update"…}`, closed by `done` or `error` |
| `GET …/{name}/events[?after_seq=N]` (or `Last-Event-ID`) | `get agentsessions` | SSE: history after N, then live frames; `: keep-alive` every 15 s |
| `POST …/{name}/cancel` | `create agentsessions/messages` for the caller's own turn, `create agentsessions/cancel` too for anyone else's | `{"session", "cancelled": bool}` |
| `GET /v1/ws` | a token at the upgrade; per frame as above | one WebSocket for many sessions (`ws_protocol`) |
| `GET /v1/providers` | a token | `{"items": [{"name", "capabilities", "variesByPlatform"}]}` for the providers of `--provider` (`providers_api`) |
| `GET /v1/whoami` | a token | `{"user", "groups"}` as TokenReview said (`access_api`) |
| `GET /v1/namespaces` | a token | `{"items": [{"name"}]}`: the namespaces holding sessions that the caller may `list agentsessions` in (`access_api`) |
| `GET /v1/namespaces/{ns}/access`, `GET …/sessions/{name}/access` | a token | `{"namespace", "name", "allowed": {"get", "list", "watch", "patch", "send", "cancel"}}` (`access_api`) |
| `GET …/sessions/{name}/config` | `get agentsessions` | the resolved configuration, as `agent-sessions explain` shows it (`config_api`) |
| `POST …/sessions/{name}/stop`, `/start`, `/restart` | `patch agentsessions`, and the cluster lets the caller's own token patch it | `{"session", "info", "detail", "change"}` (`state_api`, `caller_client`) |
| `GET /healthz`, `/readyz` | nothing | liveness, readiness (the Kubernetes API answers) |
| `GET /metrics`, on `--metrics-port` (9091) only | nothing | Prometheus; a port of its own, so that exposing the gateway never exposes it |

Errors are `{"code", "message", "session"}` (`errors`). Checks run in an order that tells a caller
nothing about sessions it may not see (`service`); a sender who may not read a session cannot tell
a missing one from a forbidden one. Every message carries who sent it in its id (`turn_owner`).
Slow and idle clients are cut off (`slow_clients`, `options`: header, body, idle and WebSocket idle
timeouts) and callers are rate limited by default (`rate_limit`). Messages to a session stopped for idleness wake
it (`wake`). Tailing is a shared history poller per session (`feed`); following a namespace's sessions is one shared
Kubernetes watch per namespace (`status_stream`), with streams bounded per caller. Message calls to the runtime
have no total or read timeout (`wire.runtime_client`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayOptions", "GatewayService", "build_app", "run_gateway", "serve_gateway"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `agent_sessions.gateway.cli` (imported by the CLI to build its parser) does not
    # import aiohttp and the Kubernetes client before a command needs them.
    if name == "GatewayOptions":
        from .options import GatewayOptions

        return GatewayOptions
    if name == "GatewayService":
        from .service import GatewayService

        return GatewayService
    if name in ("build_app", "run_gateway", "serve_gateway"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
