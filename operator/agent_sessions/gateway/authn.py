"""Who is calling: bearer tokens checked by the Kubernetes API's TokenReview.

The gateway has no users of its own: a token is whatever the cluster accepts (a service account
token, an OIDC id token, a static token), and the identity the API server reports for it is the
one every authorization decision is made for. Tokens are never logged nor kept: answers are
cached by the token's SHA-256 (see `ttl_cache`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client

from .errors import UNAUTHORIZED, GatewayError
from .kube_errors import KUBE_FAILURES, KUBE_REQUEST_SECONDS, kube_failure
from .ttl_cache import TTLCache

WEBSOCKET_TOKEN_PROTOCOL = "base64url.bearer.authorization.k8s.io."
"""Browsers cannot set headers on a WebSocket; as for the Kubernetes API itself, the token may come
as a `Sec-WebSocket-Protocol` entry `base64url.bearer.authorization.k8s.io.<base64url(token)>`."""


@dataclass(frozen=True)
class Caller:
    """An authenticated user, as TokenReview reported it (hashable: a cache key part)."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def extra_json(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.extra}


def bearer_token(headers: Mapping[str, str], protocols: Iterable[str] = ()) -> str | None:
    """The token of `Authorization: Bearer <token>`, or of a WebSocket token subprotocol."""
    scheme, _, rest = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    for protocol in protocols:
        protocol = protocol.strip()
        if protocol.startswith(WEBSOCKET_TOKEN_PROTOCOL):
            encoded = protocol[len(WEBSOCKET_TOKEN_PROTOCOL):]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return token or None
    return None


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def caller_from_status(status: Any) -> Caller | None:
    """The Caller a TokenReview status (model or dict) describes, or None if not authenticated."""
    get = (lambda obj, name: obj.get(name)) if isinstance(status, Mapping) else getattr
    if status is None or not get(status, "authenticated"):
        return None
    user = get(status, "user")
    if user is None:
        return None
    uget = (lambda obj, name: obj.get(name)) if isinstance(user, Mapping) else getattr
    extra = uget(user, "extra") or {}
    return Caller(
        user=uget(user, "username") or "",
        groups=tuple(uget(user, "groups") or ()),
        uid=uget(user, "uid") or "",
        extra=tuple(sorted((key, tuple(values or ())) for key, values in extra.items())),
    )


class TokenReviewer:
    def __init__(self, api: client.ApiClient, cache: TTLCache[str, Caller | None],
                 audiences: tuple[str, ...] = ()) -> None:
        self.api = api
        self.cache = cache
        self.audiences = audiences
        self.reviews = 0
        """TokenReviews made (the rest were answered from the cache)."""

    async def authenticate(self, token: str | None) -> Caller:
        """The caller `token` belongs to; 401 `unauthorized` for none or a token the cluster rejects."""
        if not token:
            raise GatewayError(UNAUTHORIZED, "a bearer token is required (Authorization: Bearer <token>)")
        caller = await self.cache.get_or_load(token_key(token), lambda: self._review(token))
        if caller is None:
            raise GatewayError(UNAUTHORIZED, "the bearer token was not accepted")
        return caller

    async def _review(self, token: str) -> Caller | None:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        self.reviews += 1
        try:
            review = await client.AuthenticationV1Api(self.api).create_token_review(
                body, _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, "create tokenreviews") from None
        return caller_from_status(review.status)
