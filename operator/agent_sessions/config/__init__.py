"""Configuration layer: a session's effective configuration from its templates (§5).

A session's configuration is owned by several people at once: the platform team's template
chain, the user's session, the operator's Helm values. This layer decides — as pure functions on
plain API dicts, with no I/O — what the session actually runs with, which layer each value came
from (for `agent-sessions explain` and for precise messages), whether any layer broke a
template's locks, and a hash that tells when a template edit changed a running session's
configuration. Everything that is wrong is reported at once, as Problems naming the wire path
and the responsible layer.

It imports only `agent_sessions.api` (the models it validates against), so that `lifecycle`,
providers and handlers can all build on it.
"""

from .chain import MAX_CHAIN_DEPTH, template_chain
from .defaults import BUILTIN_DEFAULTS
from .durations import parse_duration
from .explain import explain, explain_data
from .hashing import config_hash
from .layers import BUILTIN_LAYER, CONFIG_BLOCKS, OPERATOR_LAYER, session_layer, template_layer
from .problems import ConfigInvalid, Problem
from .raises import Raise, TemplateRaises, template_raises
from .resolve import ResolvedConfig, resolve_config

__all__ = [
    "BUILTIN_DEFAULTS",
    "BUILTIN_LAYER",
    "CONFIG_BLOCKS",
    "MAX_CHAIN_DEPTH",
    "OPERATOR_LAYER",
    "ConfigInvalid",
    "Problem",
    "Raise",
    "ResolvedConfig",
    "TemplateRaises",
    "config_hash",
    "explain",
    "explain_data",
    "parse_duration",
    "resolve_config",
    "session_layer",
    "template_chain",
    "template_layer",
    "template_raises",
]
