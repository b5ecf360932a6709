"""`GET /v1/providers`: the providers this installation offers and what each supports.

The answer comes from the providers themselves (`Provider.capabilities()`, constant for a
provider's lifetime, no I/O), not from a table kept beside them: the gateway builds each provider it
is told the operator offers (`GatewayOptions.providers`, `--provider`) once, on the first request,
and asks it. Building one makes no request (a provider holds clients; it calls nothing until a
session needs it). The gateway cannot ask the operator which providers it offers, so it is told,
as it is told the operator's defaults; the chart gives both the same list.

An `http` provider's capabilities are those every conforming platform guarantees
(`providers.http.constants.CONTRACT_CAPABILITIES`); a platform may claim more in its
`/v1/capabilities` (resume, resource limits), which a session's `status.capabilities` shows:
`variesByPlatform` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

from agent_sessions.providers.base import Capabilities

from .authn import bearer_token
from .service import SERVICE

VARIES_BY_PLATFORM = frozenset({"http"})


def _capabilities_of(type_name: str, api: client.ApiClient) -> Capabilities:
    # Imported here: a gateway that is never asked loads no provider code.
    if type_name == "pod":
        from agent_sessions.providers.pod.provider import PodProvider

        return PodProvider(api).capabilities()
    if type_name == "http":
        from agent_sessions.providers.http import HTTPProvider

        return HTTPProvider(api).capabilities()
    if type_name == "tmux":
        from agent_sessions.providers.tmux import TmuxProvider

        return TmuxProvider(api).capabilities()
    raise ValueError(f"unknown provider type {type_name!r}")


def provider_catalog(types: Sequence[str], api: client.ApiClient,
                     capabilities_of: Callable[[str, client.ApiClient], Capabilities] = _capabilities_of
                     ) -> dict[str, Any]:
    """The body of `GET /v1/providers`: `{"items": [{"name", "capabilities", "variesByPlatform"}]}`
    in the order given; capabilities in the camelCase of `status.capabilities`."""
    items = []
    for type_name in dict.fromkeys(types):
        capabilities = capabilities_of(type_name, api)
        items.append({"name": type_name, "capabilities": capabilities.model_dump(by_alias=True),
                      "variesByPlatform": type_name in VARIES_BY_PLATFORM})
    return {"items": items}


class ProviderCatalog:
    """The answer, computed on the first request and kept (capabilities never change)."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None

    def get(self, types: Sequence[str], api: client.ApiClient) -> dict[str, Any]:
        if self.body is None:
            self.body = provider_catalog(types, api)
        return self.body


CATALOG: web.AppKey[ProviderCatalog] = web.AppKey("providers", ProviderCatalog)
PROVIDERS_PATH = "/v1/providers"


async def list_providers(request: web.Request) -> web.Response:
    """Any authenticated caller may ask (what an installation offers is no secret of a namespace)."""
    service = request.app[SERVICE]
    await service.caller(bearer_token(request.headers))
    return web.json_response(request.app[CATALOG].get(service.options.providers, service.api))


def add_provider_routes(app: web.Application) -> None:
    app[CATALOG] = ProviderCatalog()
    app.router.add_get(PROVIDERS_PATH, list_providers)
