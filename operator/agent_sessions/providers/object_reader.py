"""Reading the Secrets and ConfigMaps a session's environment references (providers without a
kubelet: tmux, http), with `kubernetes_asyncio` (never a blocking client on the event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from .errors import ProviderUnavailable
from .environment import SECRET, ReadForbidden


class KubernetesObjectReader:
    """`env.ObjectReader` over the core/v1 API."""

    def __init__(self, core_api: Any, api_client: Any = None, *, request_timeout: float | None = 30.0) -> None:
        self._core = core_api
        self._api_client = api_client if api_client is not None else getattr(core_api, "api_client", None)
        self._timeout = request_timeout

    @classmethod
    def from_api_client(cls, api_client: Any) -> KubernetesObjectReader:
        return cls(CoreV1Api(api_client), api_client)

    async def read(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        method = self._core.read_namespaced_secret if kind == SECRET else self._core.read_namespaced_config_map
        action = f"read {kind} {namespace}/{name}"
        try:
            obj = await method(name, namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status in (401, 403):
                raise ReadForbidden(f"{action}: forbidden (check the operator's RBAC)") from error
            raise ProviderUnavailable(f"{action}: {error.status} {error.reason or ''}".strip()) from error
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise ProviderUnavailable(f"{action}: the Kubernetes API could not be reached: {error}") from error
        if isinstance(obj, Mapping):
            return obj
        if self._api_client is None:
            raise TypeError(f"cannot convert {type(obj).__name__} to a dict without an ApiClient")
        return self._api_client.sanitize_for_serialization(obj)
