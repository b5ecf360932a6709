"""What a failed call of the gateway to the Kubernetes API means to the gateway's client."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from .errors import INTERNAL_ERROR, PROVIDER_UNAVAILABLE, GatewayError

logger = logging.getLogger(__name__)

KUBE_REQUEST_SECONDS = 30
"""Total time of one call to the Kubernetes API (kubernetes_asyncio has no default timeout)."""

KUBE_FAILURES = (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""Exceptions a kubernetes_asyncio call raises when the API server refuses or cannot be reached."""


def kube_failure(exc: BaseException, doing: str) -> GatewayError:
    """An API server that cannot be reached or fails (5xx, 429) is temporary: 503, retry. The API
    server refusing the gateway's own credentials (401/403) is a deployment error the client cannot
    fix: 500, logged loudly so that the operator of the gateway sees which permission is missing."""
    status = getattr(exc, "status", None)
    if status in (401, 403):
        logger.error("the Kubernetes API refused the gateway %s (HTTP %s): check the gateway's RBAC", doing, status)
        return GatewayError(INTERNAL_ERROR, f"the gateway is not allowed to {doing}; see its logs")
    logger.warning("the Kubernetes API failed while %s: %s", doing, _describe(exc))
    return GatewayError(PROVIDER_UNAVAILABLE, f"the Kubernetes API is unavailable ({doing})", retry_after=1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
