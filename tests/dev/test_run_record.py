"""`dev.run_record`: what a killed `dev` run left running is stopped by the next run — and only
that (end to end: `tests/cli/test_dev_command.py`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import alive
from support.waits import wait_until

from agent_sessions.dev.pod_runner.processes import group_runs
from agent_sessions.dev.run_record import RunRecord, process_start

TIER = "embedded"


@pytest.fixture
def groups():
    """Process groups of their own (as the pod runner starts containers), killed at the end."""
    started: list[subprocess.Popen] = []

    def start(script: str = "import time; time.sleep(60)") -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def killed_run(state: Path, entries: list[dict], owner: int = 999_999_999) -> Path:
    """The record a run killed before it could stop would have left."""
    record = state / "running" / f"{owner}.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("".join(json.dumps(e) + "\n" for e in [{"owner": owner, "started": "1"}, *entries]))
    return record


def test_the_process_groups_a_gone_run_lists_are_stopped_and_its_record_removed(tmp_path, groups):
    first, second = groups(), groups()
    record = killed_run(tmp_path, [{"group": p.pid, "started": process_start(p.pid)} for p in (first, second)])
    with RunRecord(tmp_path) as run:
        assert run.stop_leftovers() == ["2 pod process groups"]
        assert first.wait(timeout=10) == -signal.SIGTERM and second.wait(timeout=10) == -signal.SIGTERM
        assert not record.exists()
        assert run.path.exists()  # its own record, while it runs
    assert not run.path.exists()


def test_a_group_whose_leader_is_gone_is_stopped_while_its_members_run(tmp_path, groups):
    """The pod runner kills what is left of a container's group when it exits — a killed run no
    longer can, and a group's id is not given to another process while it has members."""
    leader = groups("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                    "'import time; time.sleep(60)']); time.sleep(0.5)")
    started = process_start(leader.pid)
    leader.wait(timeout=10)
    assert group_runs(leader.pid)
    killed_run(tmp_path, [{"group": leader.pid, "started": started}])
    with RunRecord(tmp_path) as run:
        assert run.stop_leftovers() == ["1 pod process group"]
    wait_until(lambda: not group_runs(leader.pid), timeout=10, what="the group's member stopped")


def test_a_pid_now_another_process_s_is_left_alone(tmp_path, groups):
    other = groups()
    killed_run(tmp_path, [{"group": other.pid, "started": "not when it started"}])
    with RunRecord(tmp_path) as run:
        assert run.stop_leftovers() == []
    assert alive(other.pid)


def test_the_record_of_a_run_still_going_is_left_alone(tmp_path, groups):
    running = groups()
    record = killed_run(tmp_path, [{"group": running.pid, "started": process_start(running.pid)}], owner=os.getppid())
    record.write_text(record.read_text().replace('"started": "1"', f'"started": "{process_start(os.getppid())}"', 1))
    with RunRecord(tmp_path) as run:
        assert run.stop_leftovers() == []
    assert alive(running.pid) and record.exists()


def test_a_line_cut_short_by_the_kill_is_skipped(tmp_path, groups):
    process = groups()
    record = killed_run(tmp_path, [{"group": process.pid, "started": process_start(process.pid)}])
    record.write_text(record.read_text() + '{"group": 12')
    with RunRecord(tmp_path) as run:
        assert run.stop_leftovers() == ["1 pod process group"]
    assert process.wait(timeout=10) == -signal.SIGTERM


def test_a_run_that_fails_to_stop_keeps_its_record_for_the_next(tmp_path):
    with pytest.raises(RuntimeError):
        with RunRecord(tmp_path) as run:
            run.process_group(os.getpid())
            raise RuntimeError("the shutdown failed")
    assert run.path.exists()
