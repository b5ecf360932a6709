"""Suite-wide: say once, at the top, whether the real-cluster tier runs (docs/testing.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.cluster.control_plane import missing_assets


def pytest_report_header(config: pytest.Config) -> str:
    value = os.environ.get("KUBE_ASSETS")
    reason = missing_assets(Path(value) if value else None)
    if reason is None:
        return f"real-cluster tier: on (KUBE_ASSETS={value})"
    under_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return f"real-cluster tier: {'FAILS (CI)' if under_ci else 'skipped'}: {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The tier's skips in one line (they share one reason); any other skip with its own."""
    skipped = terminalreporter.stats.get("skipped", [])
    tier = [r for r in skipped if "KUBE_ASSETS" in str(r.longrepr)]
    for report in skipped:
        if report not in tier:
            where, line, reason = report.longrepr if isinstance(report.longrepr, tuple) else ("", 0, report.longrepr)
            terminalreporter.write_line(f"SKIPPED {where}:{line}: {reason}")
    if tier:
        terminalreporter.write_line(f"{len(tier)} real-cluster tests skipped: KUBE_ASSETS is not set "
                                    "(see README, 'The real API server is the truth')")
