"""Monitoring in the chart (issue 12): ServiceMonitor/PodMonitor, PrometheusRule, Grafana dashboard.

What is checked, and against what:

* the chart renders with monitoring enabled; the built-in kinds pass `kubernetes-validate --strict`
  (test_install.validate_strictly); the monitoring.coreos.com/v1 objects, which kubernetes-validate
  does not know, against a closed schema of the prometheus-operator v1 fields the chart uses (types,
  enums and duration patterns as the upstream CRDs declare them), plus what makes them work: their
  selectors pick the chart's own Services/pods and their ports exist there;
* every metric an alert or a dashboard query names is one that a running operator and a running
  gateway really export: both are started as processes (`agent-sessions run`, `agent-sessions
  gateway`) on the embedded API and their /metrics scraped; label matchers use labels the metrics
  have (or the target labels Prometheus adds);
* the alerts fire when they should, by `promtool test rules` on synthetic series, where promtool is
  installed (Debian package `prometheus`); elsewhere that test skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent_sessions.dev.strict_api import running_api
from deploy.test_install import CHART, NAMESPACE, RELEASE, run, validate_strictly
from support.embedded import CRDS

TIER = "embedded"  # helm, and an operator and a gateway as processes

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = CHART / "dashboards" / "agent-sessions.json"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"

ALL_ON = ("monitoring.scrape.enabled=true", "monitoring.prometheusRule.enabled=true",
          "monitoring.dashboard.enabled=true")
POD_MONITORS = (*ALL_ON, "monitoring.scrape.kind=PodMonitor")
OPERATOR_JOB = f"{RELEASE}-operator"
GATEWAY_JOB = f"{RELEASE}-gateway"

EXPECTED_ALERTS = {
    "AgentSessionOperatorDown", "AgentSessionGatewayDown", "AgentSessionReconcileErrors",
    "AgentSessionProviderUnavailable", "AgentSessionsFailing", "AgentSessionsStuckTerminating",
}

TARGET_LABELS = {"job", "namespace", "instance", "pod", "service", "container", "endpoint"}
"""Labels Prometheus (through the prometheus-operator's relabelling) puts on every scraped series."""


def monitoring_objects(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def the_rules(docs: list[dict]) -> list[dict]:
    (rule,) = of_kind(docs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_configmap(docs: list[dict]) -> dict:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
    return cm


# --- the prometheus-operator v1 shapes the chart uses ------------------------------------------

DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                         r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
RELABEL_ACTIONS = ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap",
                   "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase",
                   "uppercase", "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]
RELABELING = {"type": "object", "additionalProperties": False, "properties": {
    "action": {"type": "string", "enum": RELABEL_ACTIONS},
    "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
    "separator": {"type": "string"}, "regex": {"type": "string"}, "modulus": {"type": "integer"},
    "targetLabel": {"type": "string"}, "replacement": {"type": "string"}}}
METADATA = {"type": "object", "additionalProperties": False, "required": ["name", "namespace"], "properties": {
    "name": {"type": "string", "minLength": 1}, "namespace": {"type": "string", "minLength": 1},
    "labels": STRING_MAP, "annotations": STRING_MAP}}
LABEL_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}}}
NAMESPACE_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}}
SCRAPE_ENDPOINT = {"type": "object", "additionalProperties": False, "required": ["port"], "properties": {
    "port": {"type": "string"}, "path": {"type": "string"}, "scheme": {"type": "string", "enum": ["http", "https"]},
    "interval": DURATION, "scrapeTimeout": DURATION, "honorLabels": {"type": "boolean"},
    "relabelings": {"type": "array", "items": RELABELING},
    "metricRelabelings": {"type": "array", "items": RELABELING}}}


def monitor_schema(kind: str, endpoints: str) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind}, "metadata": METADATA,
                "spec": {"type": "object", "additionalProperties": False, "required": ["selector", endpoints],
                         "properties": {"jobLabel": {"type": "string"}, "namespaceSelector": NAMESPACE_SELECTOR,
                                        "selector": LABEL_SELECTOR,
                                        endpoints: {"type": "array", "minItems": 1, "items": SCRAPE_ENDPOINT}}}}}


RULE = {"type": "object", "additionalProperties": False, "required": ["expr"],
        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
        "properties": {"alert": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                       "record": {"type": "string"}, "expr": {"type": ["string", "integer"]},
                       "for": DURATION, "keep_firing_for": DURATION, "labels": STRING_MAP,
                       "annotations": STRING_MAP}}
SCHEMAS = {
    "ServiceMonitor": monitor_schema("ServiceMonitor", "endpoints"),
    "PodMonitor": monitor_schema("PodMonitor", "podMetricsEndpoints"),
    "PrometheusRule": {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
            "metadata": METADATA,
            "spec": {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
                "groups": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                    "properties": {"name": {"type": "string", "minLength": 1}, "interval": DURATION,
                                   "rules": {"type": "array", "minItems": 1, "items": RULE}}}}}}}},
}


def validate_monitoring(docs: list[dict]) -> None:
    """Built-in kinds strictly (kubernetes-validate), monitoring.coreos.com objects by SCHEMAS."""
    validate_strictly([d for d in docs if d not in monitoring_objects(docs)])
    for doc in monitoring_objects(docs):
        assert doc["kind"] in SCHEMAS, f"no schema for {doc['kind']}"
        jsonschema.validate(doc, SCHEMAS[doc["kind"]])


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) == {"matchLabels"}
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


# --- off by default --------------------------------------------------------------------------


def test_monitoring_is_off_by_default(render):
    docs = render()
    assert monitoring_objects(docs) == []
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]


# --- rendering and validation ----------------------------------------------------------------


@pytest.mark.parametrize("sets", [ALL_ON, POD_MONITORS, (*ALL_ON, "gateway.enabled=false"),
                                  (*ALL_ON, "watchNamespaces={team-a,team-b}")],
                         ids=["service-monitors", "pod-monitors", "without-gateway", "namespaced"])
def test_chart_with_monitoring_renders_and_validates(render, sets):
    docs = render(*sets)
    kinds = sorted(d["kind"] for d in monitoring_objects(docs))
    scrape = "PodMonitor" if "monitoring.scrape.kind=PodMonitor" in sets else "ServiceMonitor"
    monitors = 1 if "gateway.enabled=false" in sets else 2
    assert kinds == sorted(["PrometheusRule", *[scrape] * monitors])
    validate_monitoring(docs)


def test_helm_lint_strict_passes_with_monitoring(helm):
    for sets in (ALL_ON, POD_MONITORS):
        args = [arg for s in sets for arg in ("--set", s)]
        result = run(helm, "lint", "--strict", str(CHART), *args)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("doc_change", [
    lambda m: m["spec"]["endpoints"][0].__setitem__("intervall", "30s"),
    lambda m: m["spec"]["endpoints"][0].__setitem__("interval", "30 seconds"),
    lambda m: m["spec"]["endpoints"][0]["relabelings"][0].__setitem__("action", "rename"),
    lambda m: m["spec"].pop("selector"),
], ids=["unknown-field", "bad-duration", "bad-relabel-action", "no-selector"])
def test_monitoring_validation_catches_a_broken_service_monitor(render, doc_change):
    docs = render(*ALL_ON)
    doc_change(of_kind(docs, "ServiceMonitor")[0])
    with pytest.raises(jsonschema.ValidationError):
        validate_monitoring(docs)


def test_a_rule_must_be_an_alert_or_a_record_with_a_valid_for(render):
    docs = render(*ALL_ON)
    the_rules(docs)[0]["for"] = "five minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate_monitoring(docs)
    docs = render(*ALL_ON)
    the_rules(docs)[0]["record"] = "also_a_record"
    with pytest.raises(jsonschema.ValidationError):
        validate_monitoring(docs)


def test_service_monitors_select_the_operator_and_gateway_services_and_their_ports(render):
    docs = render(*ALL_ON)
    services = of_kind(docs, "Service")
    jobs = {}
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (service,) = [s for s in services if selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
        assert endpoint["path"] == "/metrics"
        (relabel,) = endpoint["relabelings"]
        jobs[service["metadata"]["name"]] = relabel["replacement"]
        assert relabel["targetLabel"] == "job"
    assert jobs == {f"{RELEASE}-metrics": OPERATOR_JOB, f"{RELEASE}-gateway-metrics": GATEWAY_JOB}


def test_pod_monitors_select_the_operator_and_gateway_pods_and_their_ports(render):
    docs = render(*POD_MONITORS)
    deployments = of_kind(docs, "Deployment")
    jobs = {}
    for monitor in of_kind(docs, "PodMonitor"):
        (deployment,) = [d for d in deployments
                         if selects(monitor["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = [p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
        assert endpoint["port"] in ports
        jobs[deployment["metadata"]["name"]] = endpoint["relabelings"][0]["replacement"]
    assert jobs == {RELEASE: OPERATOR_JOB, f"{RELEASE}-gateway": GATEWAY_JOB}


def test_monitor_labels_reach_the_objects_for_the_prometheus_selectors(render):
    docs = render(*ALL_ON, "monitoring.scrape.labels.release=kube-prometheus-stack",
                  "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
                  "monitoring.prometheusRule.alertLabels.team=platform")
    for doc in monitoring_objects(docs):
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for rule in the_rules(docs):
        assert rule["labels"]["team"] == "platform" and rule["labels"]["severity"] in ("warning", "critical")


def test_scraping_or_alerting_without_the_operators_metrics_is_refused(helm):
    for key in ("monitoring.scrape.enabled=true", "monitoring.prometheusRule.enabled=true"):
        for extra in ((), ("--skip-schema-validation",)):
            result = run(helm, "template", RELEASE, str(CHART), "--set", key, "--set", "metrics.enabled=false", *extra)
            assert result.returncode != 0
            assert "metrics" in result.stderr


@pytest.mark.parametrize("overrides", [
    {"kind": "Probe"}, {"interval": "30 s"}, {"extra": True},
])
def test_monitoring_values_are_checked_by_the_schema(overrides):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["monitoring"]["scrape"].update(overrides)
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(values))


# --- what the operator and the gateway really export -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(url: str, process: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.2)


def series_names(exposition: str) -> dict[str, set[str]]:
    """Sample name → label names, for every series the exposition declares (a labelled metric
    without children yet is declared by its HELP/TYPE lines, with no labels known)."""
    names: dict[str, set[str]] = {}
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "info": ("_info",), "gaugehistogram": (
                    "_bucket", "_gcount", "_gsum")}
    for family in text_string_to_metric_families(exposition):
        for suffix in suffixes.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Iterator[dict[str, dict[str, set[str]]]]:
    """What `agent-sessions run` and `agent-sessions gateway`, started as processes on the embedded
    API, serve on their /metrics: {"operator": {series: labels}, "gateway": {...}}."""
    tmp = tmp_path_factory.mktemp("scrape")
    exe = str(Path(sys.executable).with_name("agent-sessions"))
    with running_api(crds=CRDS) as api:
        kubeconfig = str(api.write_kubeconfig(tmp / "kubeconfig"))
        operator_port, gateway_port, gateway_metrics_port = free_port(), free_port(), free_port()
        processes = [
            subprocess.Popen([exe, "run", "--kubeconfig", kubeconfig, "--standalone", "--health-port", "0",
                              "--health-host", "127.0.0.1", "--metrics-port", str(operator_port),
                              "--log-format", "text"],
                             stdout=open(tmp / "operator.log", "w"), stderr=subprocess.STDOUT),
            subprocess.Popen([exe, "gateway", "--kubeconfig", kubeconfig, "--host", "127.0.0.1",
                              "--port", str(gateway_port), "--metrics-port", str(gateway_metrics_port)],
                             stdout=open(tmp / "gateway.log", "w"), stderr=subprocess.STDOUT),
        ]
        try:
            yield {
                "operator": series_names(scrape(f"http://127.0.0.1:{operator_port}/metrics", processes[0])),
                "gateway": series_names(scrape(f"http://127.0.0.1:{gateway_metrics_port}/metrics", processes[1])),
            }
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def declared_labels() -> dict[str, set[str]]:
    """Label names of the operator's and gateway's metric families, from their definitions (the
    exposition shows them only once a child exists): sample name → labels."""
    from agent_sessions.gateway import metrics as gateway_metrics  # noqa: PLC0415
    from agent_sessions.reconciler import metrics as operator_metrics  # noqa: PLC0415

    labels: dict[str, set[str]] = {}
    for module in (operator_metrics, gateway_metrics):
        for metric in vars(module).values():
            describe = getattr(metric, "describe", None)
            if describe is None or not hasattr(metric, "_labelnames"):
                continue
            for family in describe():
                for name in series_names_of(family):
                    labels[name] = set(metric._labelnames)
    return labels


def series_names_of(family) -> list[str]:
    return {"counter": [family.name + "_total"], "histogram": [family.name + s for s in ("_bucket", "_count", "_sum")],
            "gauge": [family.name]}.get(family.type, [family.name])


# --- PromQL: which metrics and labels an expression uses --------------------------------------

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"} | GROUPING
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|\{[^}]*\}|\[[^\]]*\]|'
                   r'\d[\w.]*|[A-Za-z_:][A-Za-z0-9_:]*|\$\{?\w+\}?|\S')


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each vector selector of a PromQL expression as (metric name, label names matched): names
    that are neither functions, aggregations, keywords nor labels of a by/on/... clause."""
    tokens = TOKEN.findall(expr)
    found: list[tuple[str, set[str]]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.lower() in GROUPING and following == "(":
            i = tokens.index(")", i) + 1
            continue
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token) and token.lower() not in KEYWORDS | AGGREGATIONS \
                and following != "(":
            labels = set()
            if following.startswith("{"):
                labels = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)', following))
            found.append((token, labels))
        i += 1
    return found


def problems(expr: str, component: str, exported: dict, labels: dict[str, set[str]]) -> list[str]:
    """What in `expr` is not exported by `component` ("operator"/"gateway"): unknown metrics, and
    labels neither the metric nor Prometheus' target labels have."""
    found = []
    for name, matched in selectors(expr):
        if name == "up":
            continue
        if name not in exported[component]:
            found.append(f"{name} is not exported by the {component}")
            continue
        unknown = matched - TARGET_LABELS - labels.get(name, set()) - exported[component][name]
        if unknown:
            found.append(f"{name} has no label {sorted(unknown)}")
    return found


def component_of(expr: str) -> str:
    return "gateway" if "gateway" in expr else "operator"


def test_promql_reading_finds_metrics_and_labels_but_not_functions_or_grouping_labels():
    expr = ('histogram_quantile(0.95, sum by (le, mode) (rate(agent_session_gateway_message_seconds_bucket'
            '{job="$gateway_job",namespace="$namespace"}[$__rate_interval]))) > 1 and on (job) '
            'absent(up{job="x"} == 1) unless agent_sessions offset 5m')
    assert selectors(expr) == [("agent_session_gateway_message_seconds_bucket", {"job", "namespace"}),
                               ("up", {"job"}), ("agent_sessions", set())]


def test_the_metric_check_catches_a_misspelt_metric_and_an_unknown_label(exported):
    labels = declared_labels()
    assert problems("sum(rate(agent_session_reconcile_error_total[5m]))", "operator", exported, labels) == [
        "agent_session_reconcile_error_total is not exported by the operator"]
    assert problems('sum(agent_sessions{state="Failed"})', "operator", exported, labels) == [
        "agent_sessions has no label ['state']"]
    assert problems("agent_session_gateway_open_streams", "operator", exported, labels)


def test_the_scrape_sees_the_operators_and_gateways_own_metrics(exported):
    assert {"agent_sessions", "agent_session_transitions_total", "agent_session_reconcile_errors_total",
            "agent_session_provider_errors_total", "agent_session_startup_seconds_bucket"} <= set(exported["operator"])
    assert {"agent_session_gateway_messages_total", "agent_session_gateway_requests_total"} <= set(exported["gateway"])
    # The transitions into Failed exist at 0 from the start, so increase() sees the first failure.
    assert {"from_phase", "to_phase"} <= exported["operator"]["agent_session_transitions_total"]


def test_every_alert_uses_only_metrics_and_labels_the_operator_and_gateway_export(render, exported):
    labels = declared_labels()
    rules = the_rules(render(*ALL_ON))
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert selectors(rule["expr"]), rule["alert"]
        assert problems(rule["expr"], component_of(rule["alert"].lower() + rule["expr"]), exported, labels) == [], \
            rule["alert"]


def test_every_alert_selects_its_release_by_job_and_namespace(render):
    for rule in the_rules(render(*ALL_ON)):
        job = GATEWAY_JOB if "Gateway" in rule["alert"] else OPERATOR_JOB
        for name, _ in selectors(rule["expr"]):
            assert f'{name}{{job="{job}",namespace="{NAMESPACE}"' in rule["expr"], (rule["alert"], name)


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_in_the_docs(render):
    doc = MONITORING_DOC.read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.*)$", doc, re.M)}
    for rule in the_rules(render(*ALL_ON)):
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        anchor = rule["annotations"]["runbook_url"].split("#")[1]
        assert anchor in anchors, f"docs/monitoring.md has no section for {rule['alert']}"


def test_without_the_gateway_there_is_no_gateway_alert(render):
    assert "AgentSessionGatewayDown" not in {r["alert"] for r in the_rules(render(*ALL_ON, "gateway.enabled=false"))}


# --- the dashboard ---------------------------------------------------------------------------


def dashboard_queries(dashboard: dict) -> list[str]:
    queries = []
    for panel in dashboard["panels"]:
        queries += [t["expr"] for t in panel.get("targets", [])]
    return queries


def test_dashboard_configmap_ships_the_dashboard_file_for_the_grafana_sidecar(render):
    docs = render(*ALL_ON, "monitoring.dashboard.namespace=monitoring",
                  "monitoring.dashboard.annotations.grafana_folder=Agents")
    cm = dashboard_configmap(docs)
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Agents"}
    assert json.loads(cm["data"]["agent-sessions.json"]) == json.loads(DASHBOARD.read_text())
    assert dashboard_configmap(render(*ALL_ON))["metadata"]["namespace"] == NAMESPACE


def test_every_dashboard_query_uses_only_exported_metrics_and_labels(exported):
    labels = declared_labels()
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 10
    for query in queries:
        assert selectors(query), query
        assert problems(query, component_of(query), exported, labels) == [], query
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "operator_job", "gateway_job"}
    for name in ("namespace", "operator_job", "gateway_job"):
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", variables[name]["query"]["query"])
        assert match, variables[name]
        assert problems(match[1], "gateway" if name == "gateway_job" else "operator", exported, labels) == []


def test_every_dashboard_panel_reads_the_chosen_data_source_and_no_panels_overlap():
    dashboard = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, panel["title"]
        assert g["x"] + g["w"] <= 24
        cells |= mine
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


# --- the alerts fire when they should (promtool) ---------------------------------------------

PROMTOOL_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{{job="{op}",namespace="{ns}"}}'
        values: '1x5 0x15'
      - series: 'up{{job="{gw}",namespace="{ns}"}}'
        values: '1x20'
    alert_rule_test:
      - {{eval_time: 4m, alertname: AgentSessionOperatorDown, exp_alerts: []}}
      - eval_time: 15m
        alertname: AgentSessionOperatorDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: "{op}", namespace: "{ns}"}}
      - {{eval_time: 15m, alertname: AgentSessionGatewayDown, exp_alerts: []}}
  - interval: 1m
    input_series:  # no target of the gateway at all (e.g. its Service gone): still down, still routable
      - series: 'up{{job="{op}",namespace="{ns}"}}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 10m
        alertname: AgentSessionGatewayDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: "{gw}", namespace: "{ns}"}}
      - {{eval_time: 10m, alertname: AgentSessionOperatorDown, exp_alerts: []}}
  - interval: 1m
    input_series:
      - series: 'agent_session_reconcile_errors_total{{job="{op}",namespace="{ns}",pod="a"}}'
        values: '0+1x40'
      - series: 'agent_session_provider_errors_total{{job="{op}",namespace="{ns}",provider="http",operation="observe"}}'
        values: '0+2x40'
      - series: 'agent_session_provider_errors_total{{job="{op}",namespace="{ns}",provider="pod",operation="observe"}}'
        values: '0x40'
    alert_rule_test:
      - {{eval_time: 10m, alertname: AgentSessionReconcileErrors, exp_alerts: []}}
      - eval_time: 30m
        alertname: AgentSessionReconcileErrors
        exp_alerts: [{{exp_labels: {{severity: warning, job: "{op}", namespace: "{ns}"}}}}]
      - eval_time: 30m
        alertname: AgentSessionProviderUnavailable
        exp_alerts: [{{exp_labels: {{severity: warning, provider: http, job: "{op}", namespace: "{ns}"}}}}]
  - interval: 1m
    input_series:
      - series: 'agent_session_transitions_total{{job="{op}",namespace="{ns}",from_phase="Creating",to_phase="Failed"}}'
        values: '0x10 1x40'
      - series: 'agent_session_transitions_total{{job="{op}",namespace="{ns}",from_phase="Creating",to_phase="Running"}}'
        values: '0+1x50'
    alert_rule_test:
      - {{eval_time: 9m, alertname: AgentSessionsFailing, exp_alerts: []}}
      - eval_time: 12m
        alertname: AgentSessionsFailing
        exp_alerts: [{{exp_labels: {{severity: warning, job: "{op}", namespace: "{ns}"}}}}]
      - {{eval_time: 40m, alertname: AgentSessionsFailing, exp_alerts: []}}
  - interval: 1m
    input_series:
      - series: 'agent_sessions{{job="{op}",namespace="{ns}",phase="Terminating",provider="pod"}}'
        values: '0x5 1x30'
      - series: 'agent_sessions{{job="{op}",namespace="{ns}",phase="Running",provider="pod"}}'
        values: '3x35'
    alert_rule_test:
      - {{eval_time: 15m, alertname: AgentSessionsStuckTerminating, exp_alerts: []}}
      - eval_time: 25m
        alertname: AgentSessionsStuckTerminating
        exp_alerts: [{{exp_labels: {{severity: warning, job: "{op}", namespace: "{ns}"}}}}]
"""


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # .ci/run installs it
            pytest.fail("promtool is not installed, and CI must run this test (Debian: apt-get install prometheus)")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def test_the_rules_pass_promtool_and_fire_when_they_should(render, promtool, tmp_path):
    (rule,) = of_kind(render(*ALL_ON), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run([promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool compares annotations too; check rules above has parsed their templates already.
    for group in rule["spec"]["groups"]:
        for each in group["rules"]:
            each.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    (tmp_path / "tests.yaml").write_text(PROMTOOL_TESTS.format(op=OPERATOR_JOB, gw=GATEWAY_JOB, ns=NAMESPACE))
    tested = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- the reconcile errors counter behind AgentSessionReconcileErrors ---------------------------


async def test_a_reconcile_that_raises_is_counted_as_a_reconcile_error():
    import asyncio  # noqa: PLC0415

    from prometheus_client import REGISTRY  # noqa: PLC0415

    from agent_sessions.reconciler.scheduler import SessionScheduler  # noqa: PLC0415

    before = REGISTRY.get_sample_value("agent_session_reconcile_errors_total") or 0.0

    async def broken(key):
        raise RuntimeError("boom")

    scheduler = SessionScheduler(broken)
    scheduler.trigger(("default", "a"))
    deadline = time.monotonic() + 10
    while scheduler.completed[("default", "a")] < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await scheduler.close()
    assert REGISTRY.get_sample_value("agent_session_reconcile_errors_total") == before + 1
