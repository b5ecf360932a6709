"""Every failure of a CLI command is one `error: …` line on stderr that says what to do, and exit
code 1: no traceback, no raw JSON (issue 12, points 1 and 3)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from agent_sessions.api import constants as c
from agent_sessions.cli.main import main
from support.http_server import ThreadedServer
from support.sessions import session

TIER = "embedded"

MAKE_DEV = "for a local cluster run `make dev` and use the kubeconfig it prints"
SESSION_COMMANDS = [["send", "s", "hello"], ["history", "s"], ["logs", "s"], ["logs", "s", "--follow"],
                    ["stop", "s"], ["start", "s"], ["restart", "s"], ["explain", "s"], ["stop", "--all"]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def failed(capsys: pytest.CaptureFixture, code: int) -> str:
    """The one line a failed command printed (stdout empty, exit code 1)."""
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


@pytest.fixture
def no_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path / ".kube" / "config"


@pytest.mark.parametrize("args", SESSION_COMMANDS + [["run"], ["gateway"]], ids=" ".join)
def test_without_a_kubeconfig_every_command_says_how_to_get_one(no_kubeconfig, capsys, args):
    assert failed(capsys, main(args)) == (f"error: no kubeconfig ({no_kubeconfig} does not exist): set KUBECONFIG "
                                          f"or pass --kubeconfig; {MAKE_DEV}\n")


def test_a_kubeconfig_named_but_missing_is_named(no_kubeconfig, capsys, monkeypatch, tmp_path):
    assert failed(capsys, main(["stop", "s", "--kubeconfig", str(tmp_path / "nope")])) == (
        f"error: kubeconfig {tmp_path / 'nope'} not found: pass an existing file to --kubeconfig; {MAKE_DEV}\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone"))
    assert failed(capsys, main(["logs", "s"])) == (
        f"error: no kubeconfig: KUBECONFIG={tmp_path / 'gone'} names no existing file: point it at one or pass "
        f"--kubeconfig; {MAKE_DEV}\n")


def test_a_broken_kubeconfig_is_one_line(no_kubeconfig, capsys, tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("clusters: [\n")
    assert failed(capsys, main(["stop", "s", "--kubeconfig", str(broken)])) == (
        f"error: kubeconfig {broken} is not valid YAML (expected the node content, but found '<stream end>' at line 2): "
        "fix it, or point KUBECONFIG or --kubeconfig at another\n")
    empty = tmp_path / "empty"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    assert failed(capsys, main(["explain", "s", "--kubeconfig", str(empty)])) == (
        f"error: the kubeconfig is not usable: Invalid kube-config file. Expected key current-context in {empty}: "
        "fix it, or point KUBECONFIG or --kubeconfig at another\n")


def test_without_a_kubeconfig_the_installed_command_prints_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    done = subprocess.run([str(Path(sys.executable).parent / "agent-sessions"), "send", "demo", "hello"],
                          capture_output=True, text=True, env={**env, "HOME": str(tmp_path)}, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", f"error: no kubeconfig ({tmp_path / '.kube' / 'config'} does not exist): set KUBECONFIG or pass "
        f"--kubeconfig; {MAKE_DEV}\n")


@pytest.mark.parametrize("args", SESSION_COMMANDS, ids=" ".join)
def test_an_unreachable_api_server_is_named(no_kubeconfig, capsys, tmp_path, args):
    port = closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: x, user: {}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n")
    assert failed(capsys, main([*args, "--kubeconfig", str(kubeconfig)])) == (
        f"error: cannot reach the Kubernetes API at http://127.0.0.1:{port} (Connection refused): is the cluster "
        f"running? Check the server of the kubeconfig's current context; {MAKE_DEV}\n")


def running_pod_session(api, name: str, endpoint: str = "http://127.0.0.1:1", **status) -> None:
    """A session as the operator reports it, without an operator: Running on pod `<name>-pod`."""
    api.create(c.SESSION_PLURAL, session(name))
    api.patch_status(c.SESSION_PLURAL, "default", name, {
        "phase": c.PHASE_RUNNING, "provider": {"type": c.PROVIDER_POD, "id": f"{name}-pod", "endpoint": endpoint},
        **status})


FORBIDDEN = 'agentsessions.agentsession.dev "s" is forbidden: User "bob" cannot patch resource "agentsessions"'


@pytest.mark.parametrize(("args", "method", "path", "status", "expected"), [
    (["stop", "s"], "PATCH", "/agentsessions/s$", 403,
     f"forbidden: {FORBIDDEN} (ask for RBAC access; `kubectl auth can-i --list` shows what you may do)"),
    (["explain", "s"], "GET", "/sessiontemplates$", 403,
     f"forbidden: {FORBIDDEN} (ask for RBAC access; `kubectl auth can-i --list` shows what you may do)"),
    (["logs", "s"], "GET", "/pods/s-pod/log$", 403,
     f"forbidden: {FORBIDDEN} (ask for RBAC access; `kubectl auth can-i --list` shows what you may do)"),
    (["restart", "s"], "GET", "/agentsessions/s$", 401,
     "the Kubernetes API at {server} refused the kubeconfig's credentials (401 Unauthorized): log in again or "
     "check the user of the kubeconfig's current context"),
    (["start", "s"], "PATCH", "/agentsessions/s$", 503,
     "the Kubernetes API at {server} answered 503 Service Unavailable: " + FORBIDDEN + " (try again)"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_api_refusals_are_one_line_with_what_to_do(api, kubeconfig, capsys, args, method, path, status, expected):
    running_pod_session(api, "s")
    api.fail_next(method, path, status, message=FORBIDDEN)
    server = [line.split(": ", 1)[1] for line in Path(kubeconfig).read_text().splitlines() if "server:" in line][0]
    assert failed(capsys, main([*args, "--kubeconfig", kubeconfig])) == f"error: {expected.format(server=server)}\n"


def test_logs_after_the_pod_is_gone_print_the_tail_the_operator_kept(api, kubeconfig, capsys):
    """The pod of a failed session is gone: not its 404 as raw JSON with exit code 0, but the
    status tail (with a note on stderr)."""
    running_pod_session(api, "s", phase=c.PHASE_FAILED,
                        logs={"tail": "cannot run 'claude-code-not-installed': No such file or directory\n"})
    assert main(["logs", "s", "--kubeconfig", kubeconfig]) == 0
    assert capsys.readouterr() == ("cannot run 'claude-code-not-installed': No such file or directory\n",
                                   "(pod s-pod is gone: these are the last lines the operator kept, status.logs.tail)\n")


def test_logs_without_a_pod_or_a_tail_fail_saying_where_to_look(api, kubeconfig, capsys):
    running_pod_session(api, "s", phase=c.PHASE_FAILED, conditions=[{
        "type": c.COND_READY, "status": "False", "reason": c.REASON_START_TIMEOUT,
        "message": "the runtime is not ready yet", "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    assert failed(capsys, main(["logs", "s", "--kubeconfig", kubeconfig])) == (
        "error: no logs for agentsession default/s (phase Failed, Ready=False StartTimeout: the runtime is not "
        "ready yet): pod s-pod is gone and status.logs.tail is empty; `kubectl describe agentsession s -n "
        "default` shows its events\n")


def test_logs_of_an_agent_not_started_yet_say_how_to_wait_for_them(api, kubeconfig, capsys):
    running_pod_session(api, "s", phase=c.PHASE_CREATING)
    waiting = 'container "agent" in pod "s-pod" is waiting to start: ContainerCreating'
    api.fail_next("GET", "/pods/s-pod/log$", 400, message=waiting)
    assert failed(capsys, main(["logs", "s", "--kubeconfig", kubeconfig])) == (
        f"error: no logs for agentsession default/s (phase Creating): pod s-pod has no log yet ({waiting}) and "
        "status.logs.tail is empty; `agent-sessions logs s -n default --follow` prints it as it comes\n")


class Gateway(ThreadedServer):
    """Answers every request with the status, body and content type it is given."""

    def __init__(self, status: int, body: str, content_type: str) -> None:
        super().__init__()
        self.reply = (status, body, content_type)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        status, body, content_type = self.reply
        return web.Response(status=status, text=body, content_type=content_type)


def test_an_unreachable_gateway_is_named_with_the_flag_to_check(api, kubeconfig, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (["send", "s", "hello"], ["history", "s"]):
        assert failed(capsys, main([*args, "--gateway", url, "--kubeconfig", kubeconfig])) == (
            f"error: cannot reach the gateway at {url} (Connection refused): check --gateway (or "
            "$AGENT_SESSIONS_GATEWAY) and that the gateway runs\n")


def test_a_gateway_error_is_its_code_and_message_and_anything_else_is_not_printed_raw(api, kubeconfig, capsys):
    with Gateway(404, '{"code": "session_not_found", "message": "no session default/s"}', "application/json") as gw:
        assert failed(capsys, main(["send", "s", "hello", "--gateway", gw.url, "--kubeconfig", kubeconfig])) == (
            "error: session_not_found: no session default/s\n")
    with Gateway(401, '{"code": "unauthorized", "message": "a bearer token is required"}', "application/json") as gw:
        assert failed(capsys, main(["history", "s", "--gateway", gw.url, "--kubeconfig", kubeconfig])) == (
            "error: unauthorized: a bearer token is required (the gateway takes the bearer token of the kubeconfig's "
            "user, never its client certificate: use a kubeconfig with a token)\n")
    with Gateway(502, "<html><body>Bad gateway</body></html>", "text/html") as proxy:
        assert failed(capsys, main(["history", "s", "--gateway", proxy.url, "--kubeconfig", kubeconfig])) == (
            f"error: the gateway at {proxy.url} answered 502 Bad Gateway, not an error of the session API: check "
            "--gateway (or $AGENT_SESSIONS_GATEWAY) and that the gateway runs\n")
    with Gateway(200, "<html>a login page</html>", "text/html") as portal:
        assert failed(capsys, main(["send", "s", "hello", "--gateway", portal.url, "--kubeconfig", kubeconfig])) == (
            f"error: the gateway at {portal.url} answered 200 with something other than JSON: check --gateway (or "
            "$AGENT_SESSIONS_GATEWAY) and that the gateway runs\n")


def test_an_unreachable_runtime_says_to_go_through_the_gateway(api, kubeconfig, capsys):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    running_pod_session(api, "s", endpoint=endpoint)
    assert failed(capsys, main(["send", "s", "hello", "--kubeconfig", kubeconfig])) == (
        f"error: cannot reach the runtime of default/s at {endpoint} (Connection refused): a session's runtime is "
        "reachable only from inside the cluster (and in `make dev`): from elsewhere go through the gateway with "
        "--gateway URL (or $AGENT_SESSIONS_GATEWAY)\n")


def test_a_file_a_flag_names_that_cannot_be_read_or_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert failed(capsys, main(["crds", "--out", str(blocker / "crds")])) == f"error: {blocker / 'crds'}: Not a directory\n"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: "
                          "'http://127.0.0.1:1'}}]\nusers: [{name: x, user: {}}]\ncontexts: [{name: x, context: "
                          "{cluster: x, user: x}}]\n")
    broken = tmp_path / "defaults.yaml"
    broken.write_text("agent: [\n")
    for defaults, expected in ((tmp_path / "missing.yaml", f"{tmp_path / 'missing.yaml'}: No such file or directory"),
                               (broken, f"{broken}: operator defaults are not valid YAML (expected the node content, "
                                        "but found '<stream end>' at line 2)")):
        done = subprocess.run([sys.executable, "-m", "agent_sessions.cli.main", "run", "--kubeconfig", str(kubeconfig),
                               "--defaults", str(defaults), "--health-port", "0", "--metrics-port", "0"],
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"error: {expected}\n")


def test_an_unforeseen_failure_is_still_one_line_and_the_traceback_is_one_variable_away(api, kubeconfig, capsys,
                                                                                       monkeypatch):
    from agent_sessions.cli import session_commands

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nacross lines")

    api.create(c.SESSION_PLURAL, session("s"))
    monkeypatch.setattr(session_commands, "resolve_config", broken)
    assert failed(capsys, main(["explain", "s", "--kubeconfig", kubeconfig])) == (
        "error: unexpected RuntimeError: boom across lines (set AGENT_SESSIONS_DEBUG=1 for the traceback and report it)\n")
    monkeypatch.setenv("AGENT_SESSIONS_DEBUG", "1")
    assert main(["explain", "s", "--kubeconfig", kubeconfig]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected RuntimeError") and "Traceback" in err and "in broken" in err
