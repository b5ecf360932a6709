"""`logs --follow` and `start/stop/restart --wait` (issue 12, point 8), as a user runs them."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import pytest

from agent_sessions.api import constants as c
from agent_sessions.cli.main import main
from agent_sessions.cli.session_logs import unseen_lines
from support.sessions import pods_of, session
from support.waits import TIMEOUT, condition, phase_is, ready, wait_session

TIER = "embedded"  # runs `agent-sessions logs --follow` as a subprocess


class Follower:
    """`agent-sessions logs NAME --follow` in a subprocess, its stdout read line by line."""

    def __init__(self, kubeconfig: str, name: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.cli.main", "logs", name, "--follow", "--kubeconfig", kubeconfig],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            ended = self.process.poll()
            self.process.kill()
            raise AssertionError(f"logs --follow printed nothing more (exit code {ended}, None: still running); "
                                 f"stderr: {self.process.stderr.read()}") from None

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()

    def ended(self) -> tuple[int, str]:
        """The exit code and stderr, once it ended by itself."""
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("logs --follow did not end with the session") from None
        return code, self.process.stderr.read()


def test_logs_follow_streams_the_pod_log_as_it_grows_until_the_session_stops(api, operator, kubeconfig):
    api.create(c.SESSION_PLURAL, session("talker"))
    wait_session(api, "talker", ready)
    pod = pods_of(api, "talker")[0]["metadata"]["name"]
    api.set_pod_log("default", pod, "starting\n")
    follower = Follower(kubeconfig, "talker")
    try:
        assert follower.next_line() == "starting\n"
        api.append_pod_log("default", pod, "cannot run 'claude': No such file or directory\n")
        assert follower.next_line() == "cannot run 'claude': No such file or directory\n"
        api.patch(c.SESSION_PLURAL, "default", "talker", {"spec": {"state": "Stopped"}})
        assert follower.ended() == (0, "")
        assert follower.lines.empty()
    finally:
        follower.close()


def test_logs_follow_goes_on_with_the_new_pod_of_a_restarted_session(api, operator, kubeconfig):
    api.create(c.SESSION_PLURAL, session("phoenix"))
    wait_session(api, "phoenix", ready)
    first = pods_of(api, "phoenix")[0]["metadata"]["name"]
    api.set_pod_log("default", first, "first life\n")
    follower = Follower(kubeconfig, "phoenix")
    try:
        assert follower.next_line() == "first life\n"
        api.patch(c.SESSION_PLURAL, "default", "phoenix", {"metadata": {"annotations": {c.ANNOTATION_RESTART: "1"}}})
        obj = wait_session(api, "phoenix", lambda o: ready(o) and o["status"].get("restartCount") == 1)
        api.set_pod_log("default", obj["status"]["provider"]["id"], "second life\n")
        assert follower.next_line() == "second life\n"
        api.patch(c.SESSION_PLURAL, "default", "phoenix", {"spec": {"state": "Stopped"}})
        assert follower.ended() == (0, "")
        assert follower.lines.empty()
    finally:
        follower.close()


def test_logs_follow_of_a_session_without_a_pod_prints_its_status_tail_as_it_grows(api, kubeconfig):
    """Providers without a pod log (tmux, http): the tail the operator keeps in status."""
    api.create(c.SESSION_PLURAL, session("local"))
    status = {"phase": c.PHASE_RUNNING, "provider": {"type": c.PROVIDER_TMUX, "id": "agent-local"}}
    api.patch_status(c.SESSION_PLURAL, "default", "local", {**status, "logs": {"tail": "one\ntwo\n"}})
    follower = Follower(kubeconfig, "local")
    try:
        assert (follower.next_line(), follower.next_line()) == ("one\n", "two\n")
        api.patch_status(c.SESSION_PLURAL, "default", "local", {"logs": {"tail": "two\nthree\n"}})
        assert follower.next_line() == "three\n"
        api.patch_status(c.SESSION_PLURAL, "default", "local", {"phase": c.PHASE_STOPPED})
        assert follower.ended() == (0, "")
        assert follower.lines.empty()
    finally:
        follower.close()


@pytest.mark.parametrize(("shown", "tail", "new"), [
    ([], ["a\n", "b\n"], ["a\n", "b\n"]),
    (["a\n", "b\n"], ["a\n", "b\n"], []),
    (["a\n", "b\n"], ["a\n", "b\n", "c\n"], ["c\n"]),
    (["a\n", "b\n", "c\n"], ["c\n", "d\n"], ["d\n"]),  # the window slid
    (["a\n", "b\n"], ["x\n", "y\n"], ["x\n", "y\n"]),  # slid past everything shown
    (["a\n", "a\n"], ["a\n", "a\n", "a\n"], ["a\n"]),
], ids=["first", "unchanged", "grew", "slid", "replaced", "repeated"])
def test_follow_prints_only_the_lines_of_the_tail_it_has_not_shown(shown, tail, new):
    assert unseen_lines(shown, tail) == new


def run(kubeconfig: str, *args: str) -> int:
    return main([*args, "--kubeconfig", kubeconfig])


def test_start_stop_and_restart_wait_until_the_session_is_there(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("waiter", state="Stopped"))
    wait_session(api, "waiter", phase_is(c.PHASE_STOPPED))

    assert run(kubeconfig, "start", "waiter", "--wait", "--timeout", "30s") == 0
    assert capsys.readouterr() == (f"agentsession.{c.GROUP}/waiter is Running and Ready\n", "")
    assert ready(api.get(c.SESSION_PLURAL, "default", "waiter"))

    assert run(kubeconfig, "restart", "waiter", "--wait") == 0
    assert capsys.readouterr() == (f"agentsession.{c.GROUP}/waiter is Running and Ready\n", "")
    obj = api.get(c.SESSION_PLURAL, "default", "waiter")
    assert ready(obj) and obj["status"]["restartCount"] == 1

    assert run(kubeconfig, "stop", "waiter", "--wait") == 0
    assert capsys.readouterr() == (f"agentsession.{c.GROUP}/waiter is Stopped\n", "")
    assert api.get(c.SESSION_PLURAL, "default", "waiter")["status"]["phase"] == c.PHASE_STOPPED


def test_start_wait_of_a_failed_session_ends_at_once_with_the_reason(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("broken", templateRef={"name": "nowhere"}))
    obj = wait_session(api, "broken", phase_is(c.PHASE_FAILED))
    why = condition(obj, c.COND_READY)
    started = time.monotonic()
    assert run(kubeconfig, "start", "broken", "--wait") == 1
    assert time.monotonic() - started < 5
    assert capsys.readouterr() == ("", (
        f"error: agentsession default/broken will not be Running and Ready: phase Failed, Ready=False "
        f"{why['reason']}: {' '.join(why['message'].split())} (`agent-sessions logs broken -n default` shows the "
        "agent's last lines)\n"))


def test_wait_that_times_out_says_where_the_session_is(api, kubeconfig, capsys):
    """No operator: the session never gets a status."""
    api.create(c.SESSION_PLURAL, session("stuck", state="Stopped"))
    assert run(kubeconfig, "start", "stuck", "--wait", "--timeout", "1s") == 1
    assert capsys.readouterr() == ("", "error: agentsession default/stuck not Running and Ready after 1s: phase "
                                       "unknown (wait longer with --timeout)\n")


def test_timeout_takes_durations(capsys):
    with pytest.raises(SystemExit):
        main(["start", "x", "--wait", "--timeout", "soon"])
    assert "expected a duration such as 90s, 5m or 1h, got 'soon'" in capsys.readouterr().err


def test_logs_follow_ends_quietly_on_ctrl_c(api, kubeconfig):
    import signal

    api.create(c.SESSION_PLURAL, session("local"))
    api.patch_status(c.SESSION_PLURAL, "default", "local", {
        "phase": c.PHASE_RUNNING, "provider": {"type": c.PROVIDER_TMUX, "id": "agent-local"}, "logs": {"tail": "one\n"}})
    follower = Follower(kubeconfig, "local")
    try:
        assert follower.next_line() == "one\n"
        follower.process.send_signal(signal.SIGINT)
        assert follower.ended() == (130, "")
    finally:
        follower.close()


def test_start_resumes_a_session_stopped_for_idleness(api, operator, kubeconfig, capsys):
    """spec.state is Running already: `start` asks for a wake, and --wait waits for it."""
    api.create(c.SESSION_PLURAL, session("sleepy", lifecycle={"idleTimeout": "2s"}))
    wait_session(api, "sleepy", ready)
    wait_session(api, "sleepy", lambda o: o["status"].get("stoppedReason") == c.STOPPED_IDLE_TIMEOUT
                 and o["status"].get("phase") == c.PHASE_STOPPED)
    assert run(kubeconfig, "start", "sleepy", "--wait", "--timeout", "30s") == 0
    assert capsys.readouterr() == (f"agentsession.{c.GROUP}/sleepy is Running and Ready\n", "")
    obj = api.get(c.SESSION_PLURAL, "default", "sleepy")
    assert obj["status"]["wakeRequest"] == obj["metadata"]["annotations"][c.ANNOTATION_WAKE]


def test_wait_on_a_session_deleted_meanwhile_says_so(api, kubeconfig, capsys):
    """No operator: nothing stops the session, and nothing holds its deletion."""
    api.create(c.SESSION_PLURAL, session("doomed"))
    code: list[int] = []
    waiter = threading.Thread(target=lambda: code.append(run(kubeconfig, "stop", "doomed", "--wait", "--timeout", "30s")))
    waiter.start()
    api.wait_for(lambda: (api.get(c.SESSION_PLURAL, "default", "doomed") or {}).get("spec", {}).get("state") == "Stopped")
    api.delete(c.SESSION_PLURAL, "default", "doomed")
    waiter.join(TIMEOUT)
    assert code == [1]
    assert capsys.readouterr() == ("", "error: agentsession default/doomed was deleted while waiting for it to be "
                                       "Stopped\n")


def test_logs_follow_of_an_ended_session_prints_its_kept_pod_log_and_ends(api, kubelet, kubeconfig):
    """An agent that ended by itself keeps its pod: its log, not the shorter status tail."""
    api.create(c.SESSION_PLURAL, session("done"))
    api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "done-pod", "namespace": "default"},
                        "spec": {"containers": [{"name": "agent", "image": "agent"}]}})
    api.set_pod_log("default", "done-pod", "line 1\nline 2\n")
    api.patch_status(c.SESSION_PLURAL, "default", "done", {
        "phase": c.PHASE_COMPLETED, "provider": {"type": c.PROVIDER_POD, "id": "done-pod"}, "logs": {"tail": "line 2\n"}})
    done = subprocess.run([sys.executable, "-m", "agent_sessions.cli.main", "logs", "done", "-f", "--kubeconfig",
                           kubeconfig], capture_output=True, text=True, timeout=TIMEOUT)
    assert (done.returncode, done.stdout, done.stderr) == (0, "line 1\nline 2\n", "")
