"""What resolution reports when a session's configuration cannot be used.

A session's configuration is assembled from several objects owned by different people (the
platform team's templates, the user's session, the operator's Helm values). When it is wrong,
the one fact a user needs is *which field, in which object, and why* — so every problem carries
a wire path (camelCase, as in `kubectl get -o yaml`) and the layer responsible, and all problems
are collected and reported together instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason the configuration is invalid."""

    field: str
    """Dotted wire path, e.g. `spec.agent.image` or `spec.agent.env[API_URL].value`."""
    layer: str
    """The layer responsible, e.g. `AgentSession "demo"`, `SessionTemplate "base"`,
    `operator defaults`."""
    message: str
    """What is wrong, naming every layer involved."""
    subject: str | None = None
    """The object `field` belongs to when that is not the session's (merged) spec — e.g. a
    template's own `spec.extends`. `str()` then names it before the field."""

    def __str__(self) -> str:
        prefix = f"{self.subject} " if self.subject else ""
        return f"{prefix}{self.field}: {self.message}"


class ConfigInvalid(Exception):
    """The configuration cannot be resolved; `problems` says precisely why."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))
