"""The shared runtime key and what is derived from it: per-session runtime tokens, signed wake requests.

One random key (the **runtime key**, 32 bytes) is held by the operator and the gateway only — in a
Secret of the install namespace that the operator creates on first start (`wire.runtime_key`).
Everything else is derived from it with HMAC-SHA256, so nothing per session has to be stored
where the gateway could read it:

* a session's **runtime token** is `HMAC(key, "runtime-token\\0" + uid)`: the operator writes it
  into a Secret in the session's namespace that the session pod mounts; the runtime bridge
  requires it as `Authorization: Bearer <token>` on every endpoint but `/healthz`; the operator
  and the gateway compute it from the session's uid when they call the runtime. A session that is
  deleted and created again under the same name gets a new uid and so a new token.
* a **wake request** the gateway records (an Event it may only create) carries
  `HMAC(key, "wake\\0" + namespace + "\\0" + name + "\\0" + uid + "\\0" + requestedAt)`: the
  operator acts on it only if the signature checks, so whoever else may create Events cannot wake
  sessions.

Pure functions; loading and storing the key is `wire.runtime_key`'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

KEY_BYTES: Final = 32
SECRET_KEY_FIELD: Final = "key"
"""The data key under which the runtime key Secret holds the key (base64 as every Secret value)."""

TOKEN_FILE_NAME: Final = "token"
"""The data key of a session's token Secret, and the file name where the pod mounts it."""

ENV_TOKEN_FILE: Final = "AGENT_SESSION_TOKEN_FILE"
"""The variable naming the file the runtime bridge reads its token from (reserved: a session may
not set it)."""


class KeyError_(ValueError):
    """A runtime key that is not usable (wrong length, not base64)."""


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) < KEY_BYTES:
        raise KeyError_(f"the runtime key must be at least {KEY_BYTES} bytes, got {len(key) if key else 0}")
    return bytes(key)


def _mac(key: bytes, *parts: str) -> str:
    message = "\0".join(parts).encode("utf-8")
    digest = hmac.new(check_key(key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def session_token(key: bytes, uid: str) -> str:
    """The bearer token the runtime of the session with `uid` requires (43 URL-safe characters)."""
    if not uid:
        raise ValueError("a session token needs the session's uid")
    return _mac(key, "runtime-token", uid)


def wake_signature(key: bytes, namespace: str, name: str, uid: str, requested_at: str) -> str:
    return _mac(key, "wake", namespace, name, uid, requested_at)


def wake_signature_valid(key: bytes, namespace: str, name: str, uid: str, requested_at: str,
                         signature: str) -> bool:
    expected = wake_signature(key, namespace, name, uid, requested_at)
    return hmac.compare_digest(expected.encode("ascii"), (signature or "").encode("ascii", "replace"))


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented bearer token with the expected one."""
    if not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8", "replace"))


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
