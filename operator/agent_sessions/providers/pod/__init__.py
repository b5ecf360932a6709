"""The pod provider: one Pod per session, an optional workspace PVC (§6 "pod").

Pure builders and readers (`names`, `pod_spec`, `pvc_spec`, `observe`, `validation`,
`security`) are kept apart from the one module that does I/O (`provider`).
"""

from .names import pod_name, pvc_name
from .observe import observe_pod
from .pod_spec import build_pod
from .provider import PodProvider
from .pvc_spec import build_pvc
from .validation import pod_problems

__all__ = ["PodProvider", "build_pod", "build_pvc", "observe_pod", "pod_name", "pod_problems", "pvc_name"]
