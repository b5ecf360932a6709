"""`agent-sessions dev` (behind `make dev`): a real process, driven with kubectl, curl and the lines
its banner prints, stopped by Ctrl-C, SIGTERM or a closed terminal — after which nothing it started
may be left.

Each run gets a tmux directory of its own (`TMUX_TMPDIR`), so the `local` sample's tmux server
is never the user's (`tmux -L agent-sessions` in their own /tmp/tmux-UID)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.processes import descendants, parents
from support.tools import find_tool
from support.waits import wait_until

TIER = "embedded"  # runs `agent-sessions dev` as a subprocess

ROOT = Path(__file__).resolve().parents[2]
SOCKET = "agent-sessions"
"""The socket the `local` sample names (manifests/samples/30-session-tmux.yaml)."""
HAS_TMUX = shutil.which("tmux") is not None


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    out, err = interrupt(process)
    raise AssertionError(f"never printed {marker!r}; output: {''.join(seen)}{out}; stderr: {err}")


def interrupt(process: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[str, str]:
    """Stop `dev` as a user would, so that a failing test leaves nothing behind either (a killed
    `dev` leaves its pods' processes, which then hold their loopback addresses); killed only if
    it does not stop in a minute."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


# --- processes ------------------------------------------------------------------------------


def agents(pids: set[int]) -> set[int]:
    """Those of `pids` that run the demo agent (`agent-sessions demo-agent`; the bridges that
    start it name it in their arguments too, after `runtime`)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"demo-agent" in argv and b"runtime" not in argv:
                found.add(pid)
    return found


def tmux(tmux_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True,
                          env={**os.environ, "TMUX_TMPDIR": str(tmux_dir)})


def tmux_server_pid(tmux_dir: Path) -> int | None:
    shown = tmux(tmux_dir, "display-message", "-p", "#{pid}")
    return int(shown.stdout) if shown.returncode == 0 else None


def users_tmux_sessions() -> set[str]:
    """`ags-…` tmux sessions on the user's own `agent-sessions` socket, with their uid."""
    listed = subprocess.run(["tmux", "-L", SOCKET, "list-sessions", "-F", "#{session_name} #{@ags-uid}"],
                            capture_output=True, text=True)
    return set(listed.stdout.splitlines()) if listed.returncode == 0 else set()


def get(url: str, headers: dict[str, str]) -> int:
    """The HTTP status of GET `url`."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- one `agent-sessions dev` ---------------------------------------------------------------


@dataclass
class Dev:
    process: subprocess.Popen
    banner: str
    state: Path
    """The directory of its kubeconfig, token and logs."""
    tmux_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def kubectl(self, *args: str) -> str:
        return subprocess.run([find_tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, check=True).stdout

    def sessions(self) -> dict[str, dict]:
        items = json.loads(self.kubectl("get", "ags", "-o", "json"))["items"]
        return {i["metadata"]["name"]: i for i in items}

    def wait_running(self, *names: str) -> None:
        def running() -> bool:
            phases = {name: (s.get("status") or {}).get("phase") for name, s in self.sessions().items()}
            return all(phases.get(name) == "Running" for name in names)

        wait_until(running, timeout=60, interval=0.2, what=f"{names} Running")

    def banner_line(self, start: str) -> str:
        return next(line.strip() for line in self.banner.splitlines() if line.strip().startswith(start))

    def stop(self, sig: int = signal.SIGINT) -> str:
        return interrupt(self.process, sig)[0]


def start_dev(state: Path, tmux_dir: Path, cwd: Path = ROOT) -> Dev:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_sessions.cli.main", "dev", "--port", "0", "--gateway-port", "0",
         "--kubeconfig-out", os.path.relpath(state / "kubeconfig", cwd), "--samples", str(ROOT / "manifests" / "samples")],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMUX_TMPDIR": str(tmux_dir)},
    )
    banner = read_until(process, "Ctrl-C stops everything", timeout=60)
    return Dev(process, banner, state, tmux_dir)


@contextlib.contextmanager
def private_tmux_dir() -> Iterator[Path]:
    """A TMUX_TMPDIR of the test's own (short: a socket path has at most 107 bytes); its server
    is killed at the end, whatever the test left, and no session of the test's may reach the
    user's own tmux."""
    before = users_tmux_sessions()
    directory = Path(tempfile.mkdtemp(prefix="ags-tmux-", dir="/tmp"))
    try:
        yield directory
    finally:
        if HAS_TMUX:
            tmux(directory, "kill-server")
        shutil.rmtree(directory, ignore_errors=True)
    assert users_tmux_sessions() <= before, "a tmux session was left on the user's own socket"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """One `agent-sessions dev` for the tests that only look at it; run from another directory
    than the checkout, as a user who pastes its lines elsewhere would."""
    state = tmp_path_factory.mktemp("dev") / ".dev"
    with private_tmux_dir() as tmux_dir:
        running = start_dev(state, tmux_dir, cwd=state.parent)
        try:
            running.wait_running("demo", "minimal", *(["local"] if HAS_TMUX else []))
            yield running
        finally:
            out = running.stop()
            assert running.process.returncode == 0, out
            assert "agent-sessions dev: stopped." in out


# --- stopping ---------------------------------------------------------------------------------


def started_processes(dev: Dev, tmux_dir: Path) -> set[int]:
    """Once the samples run: the processes of the two pods (each a runtime bridge and the agent it
    starts once it serves) and, with tmux, the tmux server and the bridge and agent in it."""
    try:
        dev.wait_running("demo", "minimal", *(["local"] if HAS_TMUX else []))
        started = wait_until(lambda: found if len(agents(found := descendants(dev.process.pid))) == 2 else None,
                             timeout=30, what="the pods' bridges and agents")
        if HAS_TMUX:
            server = tmux_server_pid(tmux_dir)
            assert server is not None
            started |= {server, *wait_until(lambda: found if agents(found := descendants(server)) else None,
                                            timeout=30, what="the tmux session's bridge and agent")}
        return started
    except BaseException:
        dev.stop()
        raise


def assert_nothing_left(started: set[int], tmux_dir: Path | None) -> None:
    """Nothing of `started` runs any more, and no tmux server on the run's socket; what is left
    is killed after saying so, so that one failure does not hold the next run's addresses."""
    left = started & set(parents())
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"left running: {left}"
    if HAS_TMUX and tmux_dir is not None:
        listed = tmux(tmux_dir, "list-sessions")
        assert listed.returncode != 0 and ("no server running" in listed.stderr or "error connecting" in
                                           listed.stderr), listed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_every_process_dev_started_tmux_included(sig: int, tmp_path: Path):
    with private_tmux_dir() as tmux_dir:
        dev = start_dev(tmp_path / ".dev", tmux_dir)
        started = started_processes(dev, tmux_dir)
        out = dev.stop(sig)
        assert dev.process.returncode == 0, out
        assert "agent-sessions dev: stopped." in out
        assert_nothing_left(started, tmux_dir)


def test_closing_its_terminal_stops_every_process_dev_started_though_nothing_can_be_printed(tmp_path: Path):
    """A closed terminal sends SIGHUP, and whatever `dev` prints after it fails (EIO; here EPIPE:
    the pipe's reading end is closed first). Before, SIGHUP ended `dev` at once and left the pods'
    processes and the tmux session running."""
    with private_tmux_dir() as tmux_dir:
        dev = start_dev(tmp_path / ".dev", tmux_dir)
        started = started_processes(dev, tmux_dir)
        dev.process.stdout.close()
        dev.process.stderr.close()
        dev.process.send_signal(signal.SIGHUP)
        try:
            dev.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.process.kill()
            raise
        assert dev.process.returncode == 0
        assert_nothing_left(started, tmux_dir)
        assert "Traceback" not in (tmp_path / ".dev" / "operator.log").read_text()


def test_what_a_killed_run_left_running_is_stopped_by_the_next_run(tmp_path: Path):
    """SIGKILL gives `dev` no chance to stop anything: its pods' processes (sessions of their own)
    and its tmux session (under its own server) run on. The next run in the same state directory
    stops them before it starts, and says so."""
    state = tmp_path / ".dev"
    with private_tmux_dir() as tmux_dir:
        killed = start_dev(state, tmux_dir)
        started = started_processes(killed, tmux_dir) - {tmux_server_pid(tmux_dir)}
        old_tmux = set(tmux(tmux_dir, "list-sessions", "-F", "#{session_name}").stdout.split())
        killed.process.kill()
        killed.process.communicate(timeout=30)
        assert started <= set(parents()), "the pods' processes should have outlived a killed run"

        try:
            again = start_dev(state, tmux_dir)
            try:
                stopped = "stopped what a killed earlier run had left running: 2 pod process groups"
                assert stopped + (", 1 tmux session" if HAS_TMUX else "") in again.banner
                assert_nothing_left(started, tmux_dir=None)
                again.wait_running("demo", "minimal", *(["local"] if HAS_TMUX else []))
                if HAS_TMUX:
                    now = set(tmux(tmux_dir, "list-sessions", "-F", "#{session_name}").stdout.split())
                    assert old_tmux and not old_tmux & now, (old_tmux, now)
            finally:
                out = again.stop()
        finally:
            assert_nothing_left(started, tmux_dir=None)  # and whatever is left is killed
        assert again.process.returncode == 0, out
        assert not list((state / "running").glob("*.jsonl")), "a run stopped cleanly leaves no record"


@pytest.mark.parametrize("flag", ["--port", "--gateway-port"])
def test_a_port_in_use_is_a_one_line_error(flag: str, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ports = {"--port": "0", "--gateway-port": "0", flag: port}
        with private_tmux_dir() as tmux_dir:
            ran = subprocess.run(
                [sys.executable, "-m", "agent_sessions.cli.main", "dev", *(x for kv in ports.items() for x in kv),
                 "--kubeconfig-out", str(tmp_path / ".dev" / "kubeconfig"), "--samples", str(ROOT / "manifests" / "samples")],
                capture_output=True, text=True, timeout=60, env={**os.environ, "TMUX_TMPDIR": str(tmux_dir)},
            )
    assert ran.returncode == 1
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert f"could not serve on 127.0.0.1:{port}" in ran.stderr and f"({flag} 0 picks a free port)" in ran.stderr


# --- what it runs, and the lines it prints ----------------------------------------------------


def test_dev_serves_kubectl_runs_the_samples_and_answers_messages(dev: Dev):
    assert "Applied 7 samples" in dev.banner
    sessions = dev.sessions()
    assert (sessions["parked"].get("status") or {}).get("phase") == "Stopped"
    cloud = sessions["cloud"].get("status") or {}  # the http sample needs a platform at its URL: it waits for one
    assert cloud.get("phase") == "Pending"
    assert {x["type"]: x["status"] for x in cloud.get("conditions") or []}.get("ProviderAvailable") == "False"

    table = dev.kubectl("get", "ags")
    assert table.split("\n")[0].split()[:3] == ["NAME", "PHASE", "PROVIDER"]
    assert "Demo session" in table

    # The sample session really answers: the pod runner runs the runtime bridge and the demo agent.
    sent = subprocess.run(
        [sys.executable, "-m", "agent_sessions.cli.main", "send", "demo", "hello", "--kubeconfig", str(dev.kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )
    assert (sent.returncode, sent.stdout, sent.stderr) == (0, "You said: hello\n", "")


def test_every_line_the_banner_prints_works_when_pasted_in_another_directory(dev: Dev, tmp_path: Path):
    kubeconfig = str(dev.kubeconfig)
    assert f"kubectl --kubeconfig {kubeconfig} get ags" in dev.banner  # absolute, though given as .dev/kubeconfig
    assert f"export KUBECONFIG={kubeconfig} " in dev.banner
    assert f"PATH={Path(sys.executable).parent}:" in dev.banner  # where agent-sessions and the plugin are

    def paste(line: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})

    path_without_venv = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                        if Path(p) != Path(sys.executable).parent)
    send_line = next(line.strip() for line in dev.banner.splitlines() if ' send demo "hello" --kubeconfig ' in line)
    # In a fresh shell the virtualenv is not on PATH: the line names agent-sessions by its path then.
    send = paste(send_line, **({"PATH": path_without_venv} if send_line.startswith("/") else {}))
    assert (send.returncode, send.stdout) == (0, "You said: hello\n"), send.stderr
    listed = paste(dev.banner_line(f"kubectl --kubeconfig {kubeconfig} get ags"))
    assert listed.returncode == 0 and "demo" in listed.stdout, listed.stderr

    # The shell set up as the banner says: kubectl, agent-sessions and the kubectl plugin, by name.
    setup = dev.banner_line("export KUBECONFIG=")
    plugin = paste(f"{setup}\nkubectl agentsession history demo", PATH=f"{Path(find_tool('kubectl')).parent}:"
                   f"{path_without_venv}")
    assert plugin.returncode == 0 and "hello" in plugin.stdout, plugin.stderr


def test_dev_gateway_answers_the_printed_token_and_refuses_callers_without_it(dev: Dev, tmp_path: Path):
    token = (dev.state / "token").read_text().strip()
    assert f"Bearer {token}" in dev.banner
    listing, message = [line for line in dev.banner.splitlines() if line.strip().startswith("curl ")]
    url = listing.split()[-1]

    # The two curl lines, pasted: the sessions listed, and a message answered.
    pasted = subprocess.run(["bash", "-c", f"{listing.strip()} -w ' %{{http_code}}'"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    body, _, code = pasted.stdout.rpartition(" ")
    assert code == "200", pasted
    assert {"demo", "minimal", "parked"} <= {item["name"] for item in json.loads(body)["items"]}
    answered = subprocess.run(["bash", "-c", message.strip()], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
    assert json.loads(answered.stdout)["text"] == "You said: hello", answered

    assert get(url, {"Authorization": f"Bearer {token}"}) == 200
    assert get(url, {}) == 401
    assert get(url, {"Authorization": "Bearer not-the-dev-token"}) == 401

    # The providers the gateway lists are the dev operator's: tmux too where tmux is installed.
    providers = urllib.request.Request(url.split("/v1/")[0] + "/v1/providers",
                                       headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(providers, timeout=10) as response:
        listed = {item["name"] for item in json.load(response)["items"]}
    assert listed == ({"pod", "http", "tmux"} if shutil.which("tmux") else {"pod", "http"})


def call_gateway(method: str, url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_banner_prints_the_console_and_both_tokens_and_the_viewer_may_only_read(dev: Dev):
    gateway = dev.banner_line("curl ").split()[-1].split("/v1/")[0]
    console = dev.banner_line("Console: ")
    token_path, viewer_path = dev.state / "token", dev.state / "viewer-token"
    assert console.startswith(f"Console: {gateway}/ ")
    assert str(token_path) in console and str(viewer_path) in console
    assert stat.S_IMODE(viewer_path.stat().st_mode) == 0o600
    token, viewer = token_path.read_text().strip(), viewer_path.read_text().strip()
    assert viewer != token
    assert get(gateway + "/", {}) == 200  # the console's page needs no token; its API calls do

    demo = f"{gateway}/v1/namespaces/default/sessions/demo"
    assert call_gateway("GET", f"{gateway}/v1/whoami", viewer)[1]["user"] == "viewer"
    assert call_gateway("GET", f"{gateway}/v1/whoami", token)[1]["user"] == "developer"
    assert call_gateway("GET", demo + "/access", viewer) == (200, {
        "namespace": "default", "name": "demo", "allowed": {
            "get": True, "list": True, "watch": True, "patch": False, "send": False, "cancel": False}})
    assert call_gateway("GET", demo + "/access", token)[1]["allowed"] == dict.fromkeys(
        ("get", "list", "watch", "patch", "send", "cancel"), True)
    assert {"name": "default"} in call_gateway("GET", f"{gateway}/v1/namespaces", viewer)[1]["items"]
    # The viewer reads sessions, may not stop them nor message them.
    assert call_gateway("GET", demo, viewer)[0] == 200
    assert call_gateway("POST", demo + "/stop", viewer)[1]["code"] == "forbidden"
    assert call_gateway("POST", demo + "/messages", viewer)[0] == 403
    assert dev.sessions()["demo"]["spec"].get("state") != "Stopped"


def test_operator_and_gateway_logs_land_in_the_dev_directory(dev: Dev):
    operator_log, gateway_log = dev.state / "operator.log", dev.state / "gateway.log"
    assert f"Logs: {operator_log} " in dev.banner and str(gateway_log) in dev.banner
    gateway = dev.banner_line("curl ").split()[-1]
    assert get(gateway, {"Authorization": f"Bearer {(dev.state / 'token').read_text().strip()}"}) == 200
    wait_until(lambda: "GET /v1/namespaces/default/sessions HTTP/1.1\" 200" in gateway_log.read_text(),
               timeout=10, what="the request in the gateway's access log")
    assert "runtime key read from Secret" in gateway_log.read_text()
    operator = operator_log.read_text()
    assert "kopf" in operator and "agent_sessions.gateway" not in operator


# --- make dev's install -------------------------------------------------------------------------


def test_the_license_is_an_spdx_expression_so_installing_prints_no_deprecation_box():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]  # the first to read it without a warning


# --- what the README says of it ---------------------------------------------------------------


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_the_readme_quick_start_says_where_the_gateway_token_logs_and_commands_are():
    quick_start = readme_section("Quick start")
    for fact in (".dev/token", ".dev/viewer-token", "Console", "http://127.0.0.1:8081/ ", ".dev/operator.log", ".dev/gateway.log", ".venv/bin", "kubectl agentsession",
                 "http://127.0.0.1:8081/v1/namespaces/default/sessions", "401", "tmux"):
        assert fact in quick_start, fact


def test_the_readme_layout_has_a_line_for_every_subpackage():
    layout = readme_section("Layout")
    package = ROOT / "operator" / "agent_sessions"
    subpackages = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    assert len(subpackages) >= 12
    missing = [name for name in subpackages if f"\n  {name}/ " not in layout]
    assert not missing, missing
