"""Kubernetes I/O adapters: the API client, status writes, finalizers and events.

Everything here talks to the API server through `kubernetes_asyncio` (never a blocking client
on the event loop) and identifies itself with the operator's user agent.
"""
