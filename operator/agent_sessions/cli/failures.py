"""Why a CLI command failed, in one line that says what to do.

A user who runs `agent-sessions send` without a kubeconfig, against a cluster that is down, or
without the RBAC to read sessions must not read a 39-line traceback or a raw `Status` JSON: each
failure the commands can meet (no or broken kubeconfig, API server unreachable, 401/403/404/5xx,
gateway or runtime bridge unreachable or refusing) becomes one `error: …` line on stderr and exit
code 1. A failure nobody foresaw still prints one line, naming its type;
`AGENT_SESSIONS_DEBUG=1` adds the traceback for a bug report.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # every command loads this module: the client libraries only when a failure is described
    import aiohttp
    import yaml
    from kubernetes_asyncio.client.exceptions import ApiException

DEBUG_VARIABLE = "AGENT_SESSIONS_DEBUG"
MAKE_DEV_HINT = "for a local cluster run `make dev` and use the kubeconfig it prints"


class CommandError(Exception):
    """A failure to report to the user in one line (exit code 1)."""


def in_cluster(kubeconfig: str | None) -> bool:
    """Whether `make_api_client` would use the pod's service account (as it decides)."""
    return kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG")


def kubeconfig_files(kubeconfig: str | None) -> list[str]:
    """The files the client reads: `--kubeconfig`, else each of `$KUBECONFIG`, else ~/.kube/config."""
    if kubeconfig:
        return [kubeconfig]
    listed = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    return listed or [os.path.expanduser("~/.kube/config")]


def require_kubeconfig(kubeconfig: str | None) -> None:
    """Fails with what to do when no kubeconfig file exists (and the command is not in a pod):
    the client would otherwise fail deep inside with "Expected key current-context"."""
    if in_cluster(kubeconfig):
        return
    files = kubeconfig_files(kubeconfig)
    if any(os.path.isfile(os.path.expanduser(f)) for f in files):
        return
    if kubeconfig:
        raise CommandError(f"kubeconfig {kubeconfig} not found: pass an existing file to --kubeconfig; {MAKE_DEV_HINT}")
    if os.environ.get("KUBECONFIG"):
        raise CommandError(f"no kubeconfig: KUBECONFIG={os.environ['KUBECONFIG']} names no existing file: "
                           f"point it at one or pass --kubeconfig; {MAKE_DEV_HINT}")
    raise CommandError(f"no kubeconfig ({files[0]} does not exist): set KUBECONFIG or pass --kubeconfig; {MAKE_DEV_HINT}")


def status_message(exc: ApiException) -> str:
    """The `message` of the API server's `Status` body, else its reason phrase."""
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "no message")


def api_failure(exc: ApiException, server: str) -> str:
    """An API error answer, with what the user can do about it."""
    message = status_message(exc)
    if exc.status == 401:
        return (f"the Kubernetes API at {server} refused the kubeconfig's credentials (401 Unauthorized): "
                "log in again or check the user of the kubeconfig's current context")
    if exc.status == 403:
        return f"forbidden: {message} (ask for RBAC access; `kubectl auth can-i --list` shows what you may do)"
    if exc.status == 404:
        return f"not found: {message}"
    if exc.status in (429, 500, 502, 503, 504):
        return f"the Kubernetes API at {server} answered {exc.status} {exc.reason}: {message} (try again)"
    return f"the Kubernetes API answered {exc.status} {exc.reason}: {message}"


def connection_failure(exc: aiohttp.ClientConnectorError) -> str:
    """`Connection refused`, `Name or service not known`, a certificate problem: the OS's words."""
    cause = exc.os_error
    if cause is None:
        return str(exc)
    if not isinstance(cause, socket.gaierror) and (cause.errno or 0) > 0:
        return os.strerror(cause.errno)
    return cause.strerror or str(cause) or type(cause).__name__


def describe_failure(exc: BaseException, server: str | None) -> str:
    """One line for a failure of a call to the Kubernetes API at `server` (or of anything else)."""
    import aiohttp
    import yaml
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubernetes_asyncio.config.config_exception import ConfigException

    where = server or "the kubeconfig's server"
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, ApiException):
        return api_failure(exc, where)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (f"cannot reach the Kubernetes API at {where} ({connection_failure(exc)}): is the cluster running? "
                f"Check the server of the kubeconfig's current context; {MAKE_DEV_HINT}")
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return f"the Kubernetes API at {where} did not answer in time: check that the cluster is up and try again"
    if isinstance(exc, aiohttp.ClientError):
        return f"the connection to the Kubernetes API at {where} failed ({type(exc).__name__}: {exc}): try again"
    if isinstance(exc, ConfigException):
        return f"the kubeconfig is not usable: {exc}: fix it, or point KUBECONFIG or --kubeconfig at another"
    if isinstance(exc, yaml.YAMLError):
        return f"the kubeconfig is not valid YAML ({yaml_problem(exc)}): fix it, or point KUBECONFIG at another"
    text = " ".join(str(exc).split()) or "no message"
    return f"unexpected {type(exc).__name__}: {text} (set {DEBUG_VARIABLE}=1 for the traceback and report it)"


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`expected <block end>, but found '[' at line 3`, from a YAML error."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}" if mark is not None else problem


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def one_line(text: Any) -> str:
    """A server's message on one line (bridges and gateways answer multi-line texts at times)."""
    return " ".join(str(text).split())
