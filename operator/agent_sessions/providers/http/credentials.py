"""The platform's bearer token, read from the Secret `spec.http.credentialsSecretRef` names.

The Secret is read on **every provider call** rather than cached: a rotated token is then used
by the very next call, with no watch on Secrets (which would need cluster-wide `list/watch
secrets`) and no window in which the operator keeps presenting a revoked token. The cost is one
GET per call, on the same client and connection pool as every other API request. Within one
call the token is read once, and read again only when the platform answers 401 (it may have
been rotated while the call was under way).

A missing Secret or key is transient (`ProviderUnavailable`), not a configuration error: with
GitOps or an external-secrets controller the Secret routinely appears a little after the
session, and the condition message says what is missing meanwhile.

Secrets and ConfigMaps are read through the tmux provider's `ObjectReader` (the same reads the
agent's environment needs); both belong in a module shared by the providers.
"""

from __future__ import annotations

from ..errors import ProviderUnavailable
from ..environment import SECRET, ObjectReader, object_data
from .settings import SecretKey


async def read_token(reader: ObjectReader | None, namespace: str, ref: SecretKey) -> str:
    """The token in key `ref.key` of Secret `namespace/ref.name` (surrounding whitespace removed:
    a token written with `echo` ends in a newline)."""
    where = f"Secret {namespace}/{ref.name}"
    if reader is None:
        raise ProviderUnavailable(f"cannot read {where}: the http provider was built without a Kubernetes client")
    secret = await reader.read(SECRET, namespace, ref.name)
    if secret is None:
        raise ProviderUnavailable(f"{where} (spec.http.credentialsSecretRef) does not exist")
    token = object_data(SECRET, secret).get(ref.key)
    if token is None:
        raise ProviderUnavailable(f"{where} has no key {ref.key!r} (spec.http.credentialsSecretRef.key)")
    token = token.strip()
    if not token:
        raise ProviderUnavailable(f"key {ref.key!r} of {where} is empty")
    return token
