"""The reconciler: the one level-based `reconcile()` of an AgentSession (§8), free of kopf.

`handlers` translates kopf events into `SessionScheduler.trigger`; the scheduler runs
`Reconciler.reconcile` once at a time per session; the reconciler resolves the configuration,
observes through a provider, calls the pure `lifecycle.decide()`, performs what it returns and
writes status once. Here live the I/O around the decisions and the memory they need: the
stale-read guard (`own_writes`), the per-session workers (`scheduler`) and the metrics.

May import providers, k8s, wire, lifecycle, config and api; never handlers, runtime, gateway,
dev or the CLI (the import-linter layers contract).
"""

from .own_writes import OwnWrites
from .reconcile import ReconcileOutcome, Reconciler
from .scheduler import SessionScheduler

__all__ = ["OwnWrites", "ReconcileOutcome", "Reconciler", "SessionScheduler"]
