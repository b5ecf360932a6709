"""The shard Leases on the API server: get, create and replace, nothing else (the RBAC is exactly
this: `get`/`update` of the shard Leases by name, `create` in the Lease namespace).

Plain dicts through the generic object client: the typed `V1Lease` model would turn the MicroTime
fields into datetimes and back in a format of its own; here they are written as the API server
writes them.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "coordination.k8s.io", "v1", "leases"


class LeaseConflict(Exception):
    """409: someone wrote the Lease since we read it (or created it first)."""


class LeaseGone(Exception):
    """404 on a replace: the Lease was deleted."""


class LeaseClient:
    """The Leases of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._objects = client.CustomObjectsApi(api)

    async def get(self, name: str, *, timeout: float | None = None) -> dict[str, Any] | None:
        try:
            return await self._objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def create(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        try:
            return await self._objects.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body, _request_timeout=timeout)
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict(body["metadata"]["name"]) from None
            raise

    async def replace(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """PUT with the body's `metadata.resourceVersion`: 409 (LeaseConflict) if it moved on."""
        name = body["metadata"]["name"]
        try:
            return await self._objects.replace_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, body, _request_timeout=timeout)
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict(name) from None
            if error.status == 404:
                raise LeaseGone(name) from None
            raise
