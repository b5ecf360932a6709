"""`python -I launch.py ENV_FILE -- COMMAND [ARG …]`: start COMMAND with exactly the environment
in ENV_FILE (a JSON object), and delete the file first.

Runs as the first process of a tmux window (see `command`): a script, not a module, so it starts
in milliseconds and imports nothing of the operator. The terminal variables tmux sets for its
pane (`TERM`, `TMUX`, `TMUX_PANE`, `COLORTERM`) are kept; nothing else of tmux's environment —
which is the environment of whoever started the tmux server, often the operator — reaches the
agent.
"""

import json
import os
import sys

TERMINAL_VARIABLES = ("TERM", "TMUX", "TMUX_PANE", "COLORTERM")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: launch.py ENV_FILE -- COMMAND [ARG ...]\n")
        return 2
    path, command = argv[0], argv[2:]
    try:
        with open(path, encoding="utf-8") as handle:
            env = json.load(handle)
    except (OSError, ValueError) as error:
        sys.stderr.write(f"launch.py: cannot read the session's environment {path}: {error}\n")
        return 126
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    env = {str(key): str(value) for key, value in env.items()}
    for name in TERMINAL_VARIABLES:
        if name in os.environ and name not in env:
            env[name] = os.environ[name]
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        sys.stderr.write(f"launch.py: cannot run {command[0]}: {error}\n")
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
