"""Running the operator: `agent-sessions run` and the integration tests both come through here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from agent_sessions.providers.base import Provider
from agent_sessions.wire.runtime_client import RuntimeClient

from .memories import IndexedKindsMemories
from .registration import OperatorRuntime, register
from .settings import OperatorOptions, configure


def default_provider_factories(options: OperatorOptions) -> dict[str, Callable[[Any], Provider]]:
    from agent_sessions.providers.pod.policy import PodPolicy
    from agent_sessions.providers.pod.provider import PodProvider

    from agent_sessions.providers.http import HTTPProvider

    policy = PodPolicy(options.pod_security_level, frozenset(options.allowed_service_accounts))
    factories: dict[str, Callable[[Any], Provider]] = {
        "pod": lambda api: PodProvider(api, policy=policy, default_resources=options.pod_default_resources,
                                       network_policy=options.session_network_policy,
                                       network_policy_ttl=options.network_policy_recheck_seconds),
        "http": lambda api: HTTPProvider(api, platforms=options.http_platforms, endpoints=options.http_endpoints),
    }
    if options.tmux:
        from agent_sessions.providers.tmux import TmuxProvider

        factories["tmux"] = lambda api: TmuxProvider(
            api, workspace_root=options.tmux_workspace_root, reap_orphans=options.tmux_reap_orphans
        )
    return factories


async def run_operator(
    options: OperatorOptions,
    *,
    kubeconfig: str | None = None,
    provider_factories: Mapping[str, Callable[[Any], Provider]] | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    runtime_sink: Callable[[OperatorRuntime], None] | None = None,
    runtime_client_factory: Callable[[], RuntimeClient] | None = None,
) -> None:
    """Run until `stop_flag` is set (or forever). A fresh kopf registry per run, so one process
    can run the operator several times (tests restart it)."""
    registry = kopf.OperatorRegistry()
    runtime = OperatorRuntime(
        options=options,
        provider_factories=provider_factories or default_provider_factories(options),
        kubeconfig=kubeconfig,
    )
    if runtime_client_factory is not None:
        runtime.runtime_client_factory = runtime_client_factory
    register(registry, runtime)
    runtime.kopf_memories = IndexedKindsMemories(())  # kopf indexes nothing: informers follow sessions
    if runtime_sink is not None:
        runtime_sink(runtime)
    settings = kopf.OperatorSettings()
    configure(settings, options)
    await kopf.operator(
        registry=registry,
        settings=settings,
        memories=runtime.kopf_memories,
        clusterwide=options.clusterwide,
        namespaces=list(options.namespaces),
        standalone=options.peering is None,
        peering_name=options.peering,
        priority=options.priority,
        # kopf's peering identity is the one the peering gate looks for (`handlers.peering_gate`).
        identity=options.replica_identity,  # type: ignore[arg-type]  # kopf's Identity is a str
        liveness_endpoint=options.health_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


class OperatorThread:
    """The operator in its own thread and event loop (for `agent-sessions dev` and tests).

    kopf cancels every task of its loop when it exits; in a thread of its own it cannot touch
    the caller's loop or tasks. `stop()` waits for kopf to finish its clean-up.
    """

    def __init__(self, options: OperatorOptions, *, kubeconfig: str | None = None, **kwargs: Any) -> None:
        self.options = options
        self.kubeconfig = kubeconfig
        self.kwargs = kwargs
        self.runtime: OperatorRuntime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> OperatorThread:
        def run() -> None:
            try:
                asyncio.run(
                    run_operator(
                        self.options,
                        kubeconfig=self.kubeconfig,
                        stop_flag=self._stop,
                        ready_flag=self._ready,
                        runtime_sink=self._keep_runtime,
                        **self.kwargs,
                    )
                )
            except BaseException as exc:  # handed to the caller's thread
                self.error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="agent-session-operator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            raise RuntimeError("the operator did not start") from self.error
        return self

    def _keep_runtime(self, runtime: OperatorRuntime) -> None:
        self.runtime = runtime
        self._loop = asyncio.get_running_loop()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the operator did not stop in time")

    def kill(self, timeout: float = 30.0) -> None:
        """Stop as a killed process would for the cluster: at once, no more reconciles, no more
        Lease renewals, and its shard Lease is never released (it expires). Then the thread ends."""
        if self.runtime is not None and self._loop is not None and self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.runtime.die(), self._loop).result(timeout)
        self.stop(timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
