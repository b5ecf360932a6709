"""What `--wait` takes for an answer (`session_wait.outcome`), and `--timeout` durations."""

from __future__ import annotations

import argparse

import pytest

from agent_sessions.api import constants as c
from agent_sessions.cli.session_wait import Target, duration, outcome


def obj(phase: str | None, generation: int = 2, ready: str = "True", reason: str = "Running",
        message: str = "", **status: object) -> dict:
    conditions = [{"type": c.COND_READY, "status": ready, "reason": reason, "message": message,
                   "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    return {"status": {"phase": phase, "observedGeneration": generation, "conditions": conditions, **status}}


RUNNING = Target(c.PHASE_RUNNING, 2)
STOPPED = Target(c.PHASE_STOPPED, 2)
RESTARTED = Target(c.PHASE_RUNNING, 2, ("restartRequest", "t2"))


@pytest.mark.parametrize(("session", "target", "expected"), [
    (obj(c.PHASE_RUNNING), RUNNING, True),
    (obj(c.PHASE_RUNNING, ready="False", reason="NotReady"), RUNNING, False),  # Running is not enough
    (obj(c.PHASE_RUNNING, generation=1), RUNNING, False),  # the operator has not seen our change yet
    (obj(c.PHASE_STOPPED, generation=1), RUNNING, False),
    (obj(c.PHASE_CREATING, ready="False", reason="Creating"), RUNNING, False),
    (obj(c.PHASE_STOPPED, ready="False", reason="Stopped"), STOPPED, True),
    (obj(c.PHASE_STOPPING, ready="False", reason="Stopping"), STOPPED, False),
    (obj(c.PHASE_FAILED, ready="False", reason="StartTimeout", message="the runtime\nis not ready"), RUNNING,
     "phase Failed, Ready=False StartTimeout: the runtime is not ready"),
    (obj(c.PHASE_COMPLETED, ready="False", reason="Completed"), STOPPED, "phase Completed, Ready=False Completed"),
    (obj(c.PHASE_FAILED, generation=1, ready="False", reason="StartTimeout"), RUNNING, False),  # an old failure
    (obj(c.PHASE_RUNNING, restartRequest="t1"), RESTARTED, False),  # the Running of before the restart
    (obj(c.PHASE_RUNNING, restartRequest="t2"), RESTARTED, True),
    ({"metadata": {}}, RUNNING, False),  # no status yet
], ids=["ready", "running-not-ready", "old-generation", "old-stopped", "creating", "stopped", "stopping",
        "failed", "completed", "old-failure", "before-restart", "restarted", "no-status"])
def test_wait_outcome(session, target, expected):
    assert outcome(session, target) == expected


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("1.5s", 1.5), ("5m", 300), ("1h30m", 5400),
                                               ("2h", 7200), ("1m30s", 90)])
def test_timeout_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "m", "-1s", "1s5m"])
def test_timeout_durations_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)
