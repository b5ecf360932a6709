"""`GET /v1/namespaces/{ns}/sessions/{name}/config`: a session's resolved configuration, field by
field, with the layer that set each — what `agent-sessions explain` prints, as data
(`config.explain_data`), resolved by the same `config.resolve_config`.

Who may ask: whoever may `get` the session. The configuration is the session's own (what its pod
or platform session runs with; its pod spec shows the same to whoever may read pods), so reading
the session is the right; the caller need not be allowed to read SessionTemplates, and sees only
the layers of this session's own template chain, never another template. The templates are read
with the gateway's own `list sessiontemplates`, which its RBAC has already (to resolve
`lifecycle.wakeOnMessage`, `wake`): no new right. The operator's defaults layer is the one the
gateway is told (`--operator-defaults`, which the chart gives it as it gives the operator), so the
answer is what the operator resolves; `agent-sessions explain`, which does not know them, shows
the same fields without that layer. Nothing is read from a Secret: an environment variable taken
from one shows its `secretKeyRef`.
"""

from __future__ import annotations

from aiohttp import web

from agent_sessions.config import ConfigInvalid, explain_data, resolve_config
from agent_sessions.wire.session_ref import SessionRef

from .authn import bearer_token
from .authz import READ
from .errors import INVALID_CONFIGURATION, GatewayError
from .service import SERVICE, GatewayService


async def session_config(request: web.Request) -> web.Response:
    service: GatewayService = request.app[SERVICE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    caller = await service.caller(bearer_token(request.headers))
    await service.authorize(caller, READ, namespace, name)
    obj = await service.session(namespace, name)
    ref = SessionRef.of(obj).to_json()
    templates = await service.directory.templates(namespace)
    try:
        resolved = resolve_config(obj, templates, service.options.operator_defaults)
    except ConfigInvalid as invalid:
        problems = "; ".join(" ".join(str(problem).split()) for problem in invalid.problems)
        raise GatewayError(INVALID_CONFIGURATION, f"the configuration of agentsession {namespace}/{name} is "
                           f"invalid: {problems}", session=ref) from None
    return web.json_response({"session": ref, **explain_data(resolved)})


def add_config_routes(app: web.Application, session: str) -> None:
    app.router.add_get(session + "/config", session_config)
