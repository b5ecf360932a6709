"""What runs in a session's tmux window: the bridge's command line, the window's shell command,
the clean environment, and the launcher that applies it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from agent_sessions.providers import SessionRef
from agent_sessions.providers.tmux.command import LAUNCHER, process_env, runtime_argv, window_argv

TIER = "embedded"  # runs the tmux launcher script

SESSION = SessionRef(namespace="team-a", name="demo", uid="u-1")
CONFIG = {"provider": "tmux", "agent": {"command": ["agent", "--acp"], "args": ["--model", "x y"],
                                        "protocol": "stdio-lines"}, "tmux": {"shell": "/bin/bash -l"}}


def test_the_bridge_wraps_the_agent_command_and_listens_on_loopback():
    argv = runtime_argv(SESSION, CONFIG, port=41000, workspace=Path("/w"), runtime_command=("bridge",))
    assert argv == ["bridge", "--host", "127.0.0.1", "--port", "41000", "--workspace", "/w", "--protocol",
                    "stdio-lines", "--session-namespace", "team-a", "--session-name", "demo", "--session-uid", "u-1",
                    "--", "agent", "--acp", "--model", "x y"]


def test_the_window_runs_the_configured_shell_which_execs_the_launcher():
    argv = window_argv(CONFIG, Path("/env.json"), ["bridge", "a b"], python="/py")
    assert argv[:3] == ["/bin/bash", "-l", "-c"]
    assert shlex.split(argv[3]) == ["exec", "/py", "-I", str(LAUNCHER), "/env.json", "--", "bridge", "a b"]


def test_the_environment_is_clean_with_the_agent_env_and_the_session_identity_on_top():
    host = {"PATH": "/bin", "HOME": "/home/dev", "KUBECONFIG": "/home/dev/.kube/config", "AWS_SECRET_ACCESS_KEY": "x"}
    env = process_env(host, {"MODE": "dev", "AGENT_SESSION_UID": "spoofed", "PATH": "/opt/bin"}, SESSION)
    assert env == {"PATH": "/opt/bin", "HOME": "/home/dev", "MODE": "dev", "PYTHONUNBUFFERED": "1",
                   "AGENT_SESSION_NAMESPACE": "team-a", "AGENT_SESSION_NAME": "demo", "AGENT_SESSION_UID": "u-1"}


def test_the_launcher_runs_the_command_with_exactly_the_file_env_and_deletes_the_file(tmp_path: Path):
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"ONLY": "this", "PATH": "/usr/bin:/bin"}))
    show = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
    result = subprocess.run([sys.executable, "-I", str(LAUNCHER), str(env_file), "--", *show],
                            capture_output=True, text=True, env={"TERM": "screen", "LEAKED": "no"}, check=True)
    seen = json.loads(result.stdout)
    assert seen["ONLY"] == "this" and seen["TERM"] == "screen"
    assert "LEAKED" not in seen
    assert not env_file.exists()


def test_the_launcher_fails_clearly_without_its_env_file(tmp_path: Path):
    result = subprocess.run([sys.executable, "-I", str(LAUNCHER), str(tmp_path / "gone.json"), "--", "true"],
                            capture_output=True, text=True)
    assert result.returncode == 126
    assert "cannot read the session's environment" in result.stderr
