"""`POST /v1/namespaces/{ns}/sessions/{name}/stop`, `/start`, `/restart`: what
`agent-sessions stop|start|restart NAME` does, for a browser.

The change is the CLI's own (`k8s.session_state`: `spec.state`, or the restart or wake
annotation) and is written with the caller's own token (`caller_client`), never the gateway's
credentials, which may not write AgentSessions: the cluster's RBAC and admission decide, and the
API server's audit log names the user. A SubjectAccessReview for `patch agentsessions` comes
first, so that a caller without the right gets a clear 403 `forbidden` before anything is looked
up (and learns nothing of whether the session exists). The session is read first with the
gateway's own `get`, as every endpoint reads it (`start` of a session stopped for idleness is a
wake; 404 `session_not_found`). The body is ignored (send none).

Answer: `{"session", "info": summary, "detail", "change"}` of the session as the patch left it
(`change`: what was asked, as the CLI prints it, e.g. `spec.state set to Stopped`). The operator
acts on it afterwards: the status stream (or `GET …/sessions/{name}`) shows the phase change.
"""

from __future__ import annotations

import logging

from aiohttp import web

from agent_sessions.api import constants as c
from agent_sessions.k8s.session_state import ACTIONS, Action, request_state_change
from agent_sessions.wire.session_ref import SessionRef

from .authn import bearer_token
from .authz import PATCH
from .caller_client import caller_api, caller_failure
from .kube_errors import KUBE_FAILURES, KUBE_REQUEST_SECONDS
from .service import SERVICE, GatewayService
from .session_view import detail, summary

logger = logging.getLogger(__name__)


async def change_state(request: web.Request, action: Action) -> web.Response:
    service: GatewayService = request.app[SERVICE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    token = bearer_token(request.headers)
    caller = await service.caller(token)
    await service.authorize(caller, PATCH, namespace, name)
    before = await service.session(namespace, name)
    ref = SessionRef.of(before).to_json()
    async with caller_api(service.api, token or "") as api:
        try:
            obj, change = await request_state_change(api, namespace, name, action, before,
                                                     request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise caller_failure(exc, f"patch {c.SESSION_PLURAL}", ref) from None
    logger.info("%s of %s/%s by %r: %s", action, namespace, name, caller.user, change.said)
    view = summary(obj)
    return web.json_response({"session": view["session"], "info": view, "detail": detail(obj),
                              "change": change.said})


def _handler(action: Action):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.Response:
        return await change_state(request, action)

    handle.__name__ = f"post_{action}"
    return handle


def add_state_routes(app: web.Application, session: str) -> None:
    for action in ACTIONS:
        app.router.add_post(f"{session}/{action}", _handler(action))
