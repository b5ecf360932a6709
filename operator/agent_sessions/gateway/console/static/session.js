// A session's page (`#/sessions/{ns}/{name}`): its state, conditions, health, log tail, session
// info, capabilities and resolved configuration, the stop/start/restart buttons the caller may
// use (and no others), and a chat pane. Kept current by the namespace's status stream: each change
// of this session re-reads its detail (and so does a timer, for the log tail and health).

import { ApiError, api, sessionPath } from "./api.js";
import { ago, clean, definitions, h, jsonText, replace, when } from "./dom.js";
import { ChatPane, sessionAccess } from "./chat.js";
import { NamespaceWatch } from "./watch.js";

export function renderSession(main, { namespace, name }) {
  const page = { namespace, name, detail: null, info: null, allowed: null, watch: null, timer: null, left: false };
  const phase = h("strong", { id: "session-phase" }, "…");
  const ready = h("strong", { id: "session-ready" }, "…");
  const reason = h("span", { class: "muted", id: "session-reason" });
  const title = h("p", { class: "session-title" });
  const actions = h("div", { class: "session-actions", role: "group", "aria-label": "Session actions" });
  const actionError = h("p", { id: "action-error", class: "error", role: "alert" });
  const actionStatus = h("span", { id: "action-status", class: "muted", role: "status", "aria-live": "polite" });
  const loadError = h("p", { id: "session-error", class: "error", role: "alert" });
  const conditions = card("conditions", "Conditions");
  const health = card("health", "Health");
  const logs = card("logs", "Log tail");
  const logTail = h("pre", { id: "log-tail", tabindex: "0", "aria-label": "The end of the agent's log" });
  logs.append(logTail);
  const sessionInfo = card("session-info", "Session info");
  const capabilities = card("capabilities", "Capabilities");
  const runtime = card("runtime", "Runtime");
  const config = card("config", "Resolved configuration");
  const pane = new ChatPane(namespace, name, { heading: "Chat" });

  replace(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Sessions"), ` / ${namespace} /`),
    h("div", { class: "session-head" },
      h("h1", { id: "session-name" }, name),
      h("div", { class: "badges" },
        h("span", {}, "Phase: ", phase),
        h("span", {}, "Ready: ", ready, " ", reason))),
    title,
    actions,
    actionError,
    loadError,
    h("div", { class: "session-grid" },
      pane.element, conditions, health, logs, sessionInfo, capabilities, runtime, config));

  function card(id, heading) {
    return h("section", { id, class: "card", "aria-labelledby": `${id}-heading` }, h("h2", { id: `${id}-heading` }, heading));
  }

  function fill(section, ...content) {
    const heading = section.querySelector("h2");
    section.replaceChildren(heading, ...content.flat().filter(Boolean));
  }

  function show({ info, detail, runtime: rt }) {
    const wasRunning = page.info?.phase === "Running";
    page.info = info || page.info;
    if (detail !== undefined) page.detail = detail;
    const summary = page.info || {};
    phase.textContent = clean(summary.phase || "unknown");
    ready.textContent = clean(summary.ready?.status || "Unknown");
    ready.dataset.status = summary.ready?.status || "Unknown";
    reason.textContent = summary.ready ? clean(`${summary.ready.reason || ""}${summary.ready.message ? `: ${summary.ready.message}` : ""}`) : "";
    title.textContent = clean(summary.title || page.detail?.sessionInfo?.title || "");
    showActions();
    showDetail(page.detail, summary);
    if (rt !== undefined) showRuntime(rt);
    if (!wasRunning && summary.phase === "Running") pane.poke();
  }

  function showDetail(detail, summary) {
    if (!detail) {
      const none = h("p", { class: "muted" }, "Not available from this gateway.");
      fill(conditions, none.cloneNode(true));
      fill(health, h("p", { id: "health-state" }, summary.health || "Unknown"));
      logTail.textContent = "";
      fill(sessionInfo, summary.sessionInfo ? infoList(summary.sessionInfo) : h("p", { class: "muted" }, "None reported."));
      fill(capabilities, none.cloneNode(true));
      return;
    }
    const rows = (detail.conditions || []).map((c) => h("tr", { data: { condition: c.type } },
      h("th", { scope: "row" }, c.type), h("td", { data: { col: "status" } }, c.status),
      h("td", { data: { col: "reason" } }, c.reason || ""), h("td", { data: { col: "message" } }, c.message || ""),
      h("td", { data: { col: "last-transition" } }, ago(c.lastTransitionTime))));
    fill(conditions, rows.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No conditions yet."));
    const hl = detail.health;
    fill(health, hl
      ? definitions([["State", h("span", { id: "health-state" }, hl.state || "Unknown")],
        ["Last probe", when(hl.lastProbeTime)], ["Failures in a row", String(hl.consecutiveFailures ?? 0)],
        hl.message ? ["Message", hl.message] : null].filter(Boolean))
      : h("p", { id: "health-state" }, summary.health || "Not probed yet."));
    const tail = detail.logTail ? clean(detail.logTail) : "(no log lines yet)";
    if (logTail.textContent !== tail) { // unchanged: keep where the reader scrolled to
      const atEnd = logTail.scrollHeight - logTail.scrollTop - logTail.clientHeight < 24;
      logTail.textContent = tail;
      if (atEnd) logTail.scrollTop = logTail.scrollHeight;
    }
    fill(sessionInfo, detail.sessionInfo ? infoList(detail.sessionInfo) : h("p", { class: "muted" }, "None reported."));
    fill(capabilities, detail.capabilities && typeof detail.capabilities === "object"
      ? definitions(Object.entries(detail.capabilities).map(([key, value]) => [key, valueText(value)]))
      : h("p", { class: "muted" }, "Not known yet."),
    h("h3", {}, "Lifecycle"),
    definitions([["Desired state", detail.state || "?"], ["Started", when(detail.startTime) || "—"],
      ["Restarts", String(detail.restartCount ?? 0)], detail.stoppedReason ? ["Stopped by", detail.stoppedReason] : null].filter(Boolean),
    { class: "state-list" }));
  }

  function showRuntime(rt) {
    if (!rt) {
      fill(runtime, h("p", { class: "muted" }, "Not running: no runtime to ask."));
      return;
    }
    fill(runtime, definitions([
      ["Agent", [rt.agent?.title || rt.agent?.name, rt.agent?.version].filter(Boolean).join(" ") || "?"],
      ["State", rt.state || "?"],
      ["Messages", String(rt.messageCount ?? 0)],
      ["Last activity", when(rt.lastActivityTime)],
    ]));
  }

  /** Title, update time and each `_meta` key, as one definition list. */
  function infoList(info) {
    const pairs = [];
    if ("title" in info) pairs.push(["Title", info.title ?? ""]);
    if (info.updatedAt) pairs.push(["Updated", when(info.updatedAt)]);
    const meta = info._meta ?? info.meta;
    if (meta && typeof meta === "object") {
      for (const [key, value] of Object.entries(meta)) pairs.push([h("code", {}, `_meta.${key}`), valueText(value)]);
    }
    return pairs.length ? definitions(pairs) : h("p", { class: "muted" }, "Empty.");
  }

  function showActions() {
    if (!page.allowed?.patch) {
      actions.replaceChildren();
      return;
    }
    const state = page.detail?.state || (page.info?.phase === "Stopped" ? "Stopped" : "Running");
    if (!actions.firstChild) {
      actions.append(actionStatus);
      actions.prepend(
        h("button", { id: "stop", type: "button", class: "secondary", on: { click: () => act("stop") } }, "Stop"),
        h("button", { id: "start", type: "button", class: "secondary", on: { click: () => act("start") } }, "Start"),
        h("button", { id: "restart", type: "button", class: "secondary", on: { click: () => act("restart") } }, "Restart"));
    }
    if (!page.busy) {
      actions.querySelector("#stop").disabled = state === "Stopped";
      actions.querySelector("#start").disabled = state === "Running";
      actions.querySelector("#restart").disabled = false;
    }
  }

  async function act(verb) {
    page.busy = true;
    actionError.textContent = "";
    actionStatus.textContent = `${verb[0].toUpperCase()}${verb.slice(1)}…`;
    for (const button of actions.querySelectorAll("button")) button.disabled = true;
    try {
      const answer = await api(sessionPath(namespace, name, `/${verb}`), { method: "POST" });
      page.busy = false;
      actionStatus.textContent = { stop: "Stop requested.", start: "Start requested.", restart: "Restart requested." }[verb];
      show({ info: answer.info, detail: answer.detail });
    } catch (error) {
      page.busy = false;
      actionStatus.textContent = "";
      actionError.textContent = `Could not ${verb} the session: ${error.message}`;
      showActions();
    }
  }

  async function load() {
    clearTimeout(page.timer);
    try {
      const answer = await api(sessionPath(namespace, name, "?after_seq=0&limit=1"));
      if (page.left) return;
      loadError.textContent = "";
      show({ info: answer.info, detail: answer.detail ?? page.detail, runtime: answer.runtime });
    } catch (error) {
      if (page.left) return;
      loadError.textContent = error.status === 404 ? `There is no session ${namespace}/${name}.` : `Cannot read the session: ${error.message}`;
    }
  }

  async function loadConfig() {
    try {
      const answer = await api(sessionPath(namespace, name, "/config"));
      if (!page.left) showConfig(answer);
    } catch (error) {
      if (page.left) return;
      const text = error instanceof ApiError && error.code === "not_found"
        ? "Not available from this gateway."
        : error.code === "invalid_configuration" ? `The configuration does not resolve: ${error.message}` : error.message;
      fill(config, h("p", { class: error.code === "invalid_configuration" ? "error" : "muted" }, text));
    }
  }

  function showConfig(answer) {
    const chain = (answer.templateChain || []).map((t) => `${t.name}${t.generation !== undefined ? ` (generation ${t.generation})` : ""}`);
    const rows = (answer.fields || []).map((field) => h("tr", { data: { path: field.path } },
      h("td", { data: { col: "path" } }, h("code", {}, field.path)),
      h("td", { data: { col: "layer" } }, field.layer),
      h("td", { data: { col: "value" } }, h("pre", {}, jsonText(field.value)))));
    const removed = (answer.removed || []).map((field) => h("tr", { class: "removed", data: { path: field.path } },
      h("td", { data: { col: "path" } }, h("code", {}, field.path)),
      h("td", { data: { col: "layer" } }, field.layer),
      h("td", { data: { col: "value" } }, h("em", {}, "removed"))));
    fill(config,
      definitions([
        ["Templates", chain.length ? chain.join(" → ") : "none"],
        ["Locked fields", (answer.lockedFields || []).join(", ") || "none"],
        ["Hash", h("code", {}, answer.hash || "")],
      ]),
      h("table", { class: "config" },
        h("caption", {}, "Each field and the layer it came from (as agent-sessions explain prints)"),
        h("thead", {}, h("tr", {}, ["Field", "From", "Value"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows, removed)),
      (answer.raised || []).length ? h("div", {}, h("h3", {}, "Raised by the platform"), h("ul", {},
        answer.raised.map((r) => h("li", {}, h("code", {}, r.key), `: ${jsonText(r.value)}`)))) : null);
  }

  function refreshSoon() {
    clearTimeout(page.timer);
    page.timer = setTimeout(load, 250);
  }

  fill(conditions, h("p", { class: "muted" }, "Loading…"));
  fill(config, h("p", { class: "muted" }, "Loading…"));
  sessionAccess(namespace, name).then((allowed) => {
    page.allowed = allowed;
    if (page.left) return;
    pane.allowed = allowed;
    pane.start();
    showActions();
  }).catch((error) => {
    page.allowed = {};
    pane.allowed = {};
    pane.start();
    loadError.textContent = `Cannot ask what you may do here: ${error.message}`;
  });
  load();
  loadConfig();
  page.watch = new NamespaceWatch(namespace, {
    sessions: (map) => {
      if (!map.has(name)) return;
      show({ info: map.get(name) }); // the summary at once; the detail follows
      refreshSoon();
    },
    changed: (summary) => {
      if (summary.name !== name) return;
      show({ info: summary });
      refreshSoon();
    },
    deleted: (gone) => {
      if (gone === name) loadError.textContent = `The session ${namespace}/${name} was deleted.`;
    },
    state: () => {},
  }).start();

  // The log tail and health change without the summary changing (the stream is quiet then).
  const poll = setInterval(() => {
    if (document.visibilityState === "visible") load();
  }, 15000);

  return () => {
    page.left = true;
    clearInterval(poll);
    clearTimeout(page.timer);
    page.watch.stop();
    pane.dispose();
  };
}

function valueText(value) {
  if (value === true) return "yes";
  if (value === false) return "no";
  if (value !== null && typeof value === "object") return h("pre", {}, jsonText(value));
  return jsonText(value);
}
