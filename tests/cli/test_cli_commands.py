"""The session commands of the CLI against the embedded API and the real operator."""

from __future__ import annotations

import pytest

from agent_sessions.api import constants as c
from agent_sessions.cli.main import main
from support.sessions import IMAGE, pods_of, session, template
from support.waits import phase_is, ready, wait_session

TIER = "embedded"  # runs the CLI in subprocesses


def run(kubeconfig: str, *args: str) -> int:
    return main([*args, "--kubeconfig", kubeconfig])


def test_stop_start_and_restart_drive_the_session(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("cli"))
    wait_session(api, "cli", ready)

    assert run(kubeconfig, "stop", "cli") == 0
    assert "spec.state set to Stopped" in capsys.readouterr().out
    wait_session(api, "cli", phase_is(c.PHASE_STOPPED))

    assert run(kubeconfig, "start", "cli") == 0
    wait_session(api, "cli", ready)

    assert run(kubeconfig, "restart", "cli") == 0
    obj = wait_session(api, "cli", lambda o: ready(o) and o["status"].get("restartCount") == 1)
    assert c.ANNOTATION_RESTART in obj["metadata"]["annotations"]


def test_explain_prints_each_field_with_the_layer_that_set_it(api, operator, kubeconfig, capsys):
    api.create(c.TEMPLATE_PLURAL, template("base", agent={"image": IMAGE, "command": ["agent"]}, lifecycle={"idleTimeout": "30m"}))
    api.create(c.SESSION_PLURAL, session("explained", templateRef={"name": "base"}, lifecycle={"idleTimeout": "1h"}))
    assert run(kubeconfig, "explain", "explained") == 0
    out = capsys.readouterr().out
    image_line = next(line for line in out.splitlines() if line.lstrip().startswith("agent.image"))
    idle_line = next(line for line in out.splitlines() if line.lstrip().startswith("lifecycle.idleTimeout"))
    assert IMAGE in image_line and 'SessionTemplate "base"' in image_line
    assert '"1h"' in idle_line and 'AgentSession "explained"' in idle_line


def test_explain_of_an_invalid_session_lists_the_problems(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("confused", templateRef={"name": "nowhere"}))
    assert run(kubeconfig, "explain", "confused") == 1
    assert capsys.readouterr() == ("", 'error: the configuration of agentsession default/confused is invalid: '
                                       'spec.templateRef.name: SessionTemplate "nowhere" not found in namespace '
                                       '"default"\n')


def test_logs_prints_the_agent_log(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("talker"))
    wait_session(api, "talker", ready)
    api.set_pod_log("default", pods_of(api, "talker")[0]["metadata"]["name"], "hello from the agent\n")
    assert run(kubeconfig, "logs", "talker") == 0
    assert capsys.readouterr().out == "hello from the agent\n"


def test_send_to_a_session_that_is_not_running_fails_clearly(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, session("asleep", state="Stopped"))
    wait_session(api, "asleep", phase_is(c.PHASE_STOPPED))
    assert run(kubeconfig, "send", "asleep", "hello") == 1
    assert capsys.readouterr().err == ("error: session default/asleep is not running (phase Stopped, Ready=False "
                                       "Stopped: stopped because spec.state is Stopped; its workspace is kept): start it "
                                       "with `agent-sessions start asleep -n default --wait`\n")


@pytest.mark.parametrize("args", [["stop", "ghost"], ["start", "ghost", "--wait"], ["restart", "ghost"],
                                  ["send", "ghost", "hello"], ["history", "ghost"], ["logs", "ghost"],
                                  ["logs", "ghost", "--follow"], ["explain", "ghost"]], ids=" ".join)
def test_commands_on_a_missing_session_say_so(api, kubeconfig, capsys, args):
    assert run(kubeconfig, *args) == 1
    assert capsys.readouterr() == ("", 'error: agentsession "ghost" not found in namespace "default"\n')


def test_installed_as_a_kubectl_plugin(api, operator, kubeconfig):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from support.tools import find_tool

    bin_dir = Path(sys.executable).parent
    kubectl = find_tool("kubectl")
    assert (bin_dir / "kubectl-agentsession").is_file(), "the package installs the kubectl-agentsession script"
    api.create(c.SESSION_PLURAL, session("plugged"))
    wait_session(api, "plugged", ready)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True, env=env)
    assert str(bin_dir / "kubectl-agentsession") in listed.stdout
    stopped = subprocess.run([kubectl, "agentsession", "stop", "plugged", "--kubeconfig", kubeconfig],
                             capture_output=True, text=True, env=env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    wait_session(api, "plugged", phase_is(c.PHASE_STOPPED))
