"""Starting the real operator (kopf in its own thread) in tests, once.

`operators` is the one fixture that starts operators and stops every one of them at the end of
the test, whatever happened; suites bind their own defaults (refresh periods, providers) with
`operators.starter(...)` rather than writing the start/stop loop again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions


class Operators:
    """The operators one test started; `stop_all` stops them in the order they started."""

    def __init__(self) -> None:
        self.running: list[OperatorThread] = []

    def start(self, kubeconfig: str, options: OperatorOptions | None = None, **kwargs: Any) -> OperatorThread:
        return self.run(OperatorThread(options or OperatorOptions(), kubeconfig=kubeconfig, **kwargs))

    def run(self, operator: OperatorThread) -> OperatorThread:
        """Start an operator the test built itself (to wire its providers first)."""
        self.running.append(operator)
        return operator.start()

    def starter(self, kubeconfig: str, **defaults: Any) -> Callable[..., OperatorThread]:
        """A `start(**options)` with this suite's defaults: `OperatorOptions` fields go to the
        options, anything else (`provider_factories`, …) to `OperatorThread`."""
        option_names = set(OperatorOptions.__dataclass_fields__)

        def start(**given: Any) -> OperatorThread:
            merged = {**defaults, **given}
            options = OperatorOptions(**{k: v for k, v in merged.items() if k in option_names})
            return self.start(kubeconfig, options, **{k: v for k, v in merged.items() if k not in option_names})

        return start

    def stop_all(self) -> None:
        for operator in self.running:
            operator.stop()
        self.running.clear()


@pytest.fixture
def operators() -> Iterator[Operators]:
    started = Operators()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def start_operator(kubeconfig: str, operators: Operators) -> Callable[..., OperatorThread]:
    """Start operators on the test's API with the default options (a test that restarts the
    operator calls it twice); every one is stopped at the end of the test, before the API.

    Every suite's `start_operator` asks for `operators` last: fixtures are torn down in reverse
    order, so the operators stop while the API, tmux server or platform they use still runs."""
    return operators.starter(kubeconfig)


@pytest.fixture
def operator(start_operator: Callable[..., OperatorThread], kubelet: Any) -> OperatorThread:
    """One operator, with the backend's node (fake kubelet or simulated node) running pods."""
    return start_operator()
