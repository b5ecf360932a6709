"""`stop/start/restart` on several sessions: NAME…, `-l SELECTOR`, `--all` (issue 12, the design
review's batch operations): one line per session, exit code 1 when any of them failed."""

from __future__ import annotations

from agent_sessions.api import constants as c
from agent_sessions.cli.main import main
from support.sessions import session
from support.waits import phase_is, ready, wait_session

TIER = "embedded"

G = c.GROUP


def run(kubeconfig: str, *args: str) -> int:
    return main([*args, "--kubeconfig", kubeconfig])


def labelled(name: str, team: str, **spec) -> dict:
    obj = session(name, **spec)
    obj["metadata"]["labels"] = {"team": team}
    return obj


def states(api) -> dict[str, str | None]:
    return {o["metadata"]["name"]: o["spec"].get("state") for o in api.list(c.SESSION_PLURAL, "default")}


def test_stop_by_selector_and_start_all_act_on_every_matching_session(api, operator, kubeconfig, capsys):
    for name, team in (("b", "x"), ("a", "x"), ("c", "y")):
        api.create(c.SESSION_PLURAL, labelled(name, team))
    for name in "abc":
        wait_session(api, name, ready)

    assert run(kubeconfig, "stop", "-l", "team=x", "--wait") == 0
    out, err = capsys.readouterr()
    assert (sorted(out.splitlines()), err) == ([f"agentsession.{G}/a is Stopped", f"agentsession.{G}/b is Stopped"], "")
    assert api.get(c.SESSION_PLURAL, "default", "c")["status"]["phase"] == c.PHASE_RUNNING

    assert run(kubeconfig, "start", "--all") == 0
    assert capsys.readouterr() == ("".join(f"agentsession.{G}/{n} spec.state set to Running\n" for n in "abc"), "")
    for name in "ab":
        wait_session(api, name, ready)

    assert run(kubeconfig, "restart", "-l", "team in (x,y)", "--wait") == 0
    out, err = capsys.readouterr()
    assert (sorted(out.splitlines()), err) == ([f"agentsession.{G}/{n} is Running and Ready" for n in "abc"], "")
    assert all(api.get(c.SESSION_PLURAL, "default", n)["status"]["restartCount"] == 1 for n in "abc")


def test_a_batch_goes_on_past_a_failing_session_and_exits_non_zero(api, kubeconfig, capsys):
    for name in ("a", "b", "c"):
        api.create(c.SESSION_PLURAL, session(name))
    api.fail_next("PATCH", "/agentsessions/b$", 403, message='agentsessions.agentsession.dev "b" is forbidden')
    assert run(kubeconfig, "stop", "--all") == 1
    assert capsys.readouterr() == (
        f"agentsession.{G}/a spec.state set to Stopped\nagentsession.{G}/c spec.state set to Stopped\n",
        'error: forbidden: agentsessions.agentsession.dev "b" is forbidden (ask for RBAC access; `kubectl auth '
        'can-i --list` shows what you may do)\n')
    assert states(api) == {"a": "Stopped", "b": None, "c": "Stopped"}

    assert run(kubeconfig, "start", "c", "ghost", "a") == 1
    assert capsys.readouterr() == (
        f"agentsession.{G}/c spec.state set to Running\nagentsession.{G}/a spec.state set to Running\n",
        'error: agentsession "ghost" not found in namespace "default"\n')


def test_a_batch_wait_reports_each_session_that_does_not_get_there(api, operator, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, labelled("fine", "x", state="Stopped"))
    api.create(c.SESSION_PLURAL, labelled("broken", "x", state="Stopped", templateRef={"name": "nowhere"}))
    wait_session(api, "fine", phase_is(c.PHASE_STOPPED))
    assert run(kubeconfig, "start", "-l", "team=x", "--wait", "--timeout", "30s") == 1
    out, err = capsys.readouterr()
    assert out == f"agentsession.{G}/fine is Running and Ready\n"
    assert err.startswith("error: agentsession default/broken will not be Running and Ready: phase Failed, "
                          "Ready=False InvalidConfiguration: ") and err.count("\n") == 1, err


def test_a_selector_that_matches_nothing_says_so(api, kubeconfig, capsys):
    api.create(c.SESSION_PLURAL, labelled("a", "x"))
    assert run(kubeconfig, "stop", "-l", "team=nobody") == 0
    assert capsys.readouterr() == ("", "no agentsessions match -l team=nobody in namespace default: nothing to stop\n")
    assert run(kubeconfig, "restart", "--all", "-n", "empty") == 0
    assert capsys.readouterr() == ("", "no agentsessions exist in namespace empty: nothing to restart\n")


def test_state_commands_take_names_a_selector_or_all_and_only_one_of_them(api, kubeconfig, capsys):
    for args in (["stop"], ["stop", "a", "--all"], ["start", "-l", "team=x", "--all"]):
        assert run(kubeconfig, *args) == 1
        assert capsys.readouterr() == ("", f"error: {args[0]}: name the sessions (NAME …), select them "
                                           "(-l SELECTOR) or take --all\n")
