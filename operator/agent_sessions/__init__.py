"""agent-session-operator: AI agent sessions as Kubernetes resources."""

from agent_sessions.lazy_client import install as _lazy_kubernetes_client

__version__ = "0.1.0"

# Before anything imports `kubernetes_asyncio.client` (kopf does, at import): the ~770 models it
# would import at once, for the few an operator uses, cost ~30 MiB of every process of ours.
_lazy_kubernetes_client()
