"""The tmux provider: sessions as tmux sessions on the operator's host (§6 "tmux", development).

Pure builders and readers (`names`, `validation`, `command`, `observe`, `env`) are kept apart from
the I/O: `tmux_server` (the tmux commands, synchronous, run in worker threads), `object_reader`
(Secrets and ConfigMaps from the API) and `provider`. `launch.py` is the tiny script that starts
the runtime bridge in a window with exactly the session's environment.
"""

from .names import tmux_session_name, workspace_path
from .observe import observe_tmux
from .orphans import known_uids, report_orphans
from .provider import TmuxProvider, default_workspace_root
from .state import RuntimeProbe, TmuxSessionState
from .tmux_server import TmuxServer
from .validation import tmux_problems

__all__ = [
    "RuntimeProbe",
    "TmuxProvider",
    "TmuxServer",
    "TmuxSessionState",
    "default_workspace_root",
    "known_uids",
    "observe_tmux",
    "report_orphans",
    "tmux_problems",
    "tmux_session_name",
    "workspace_path",
]
