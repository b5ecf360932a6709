// The sessions list (`#/`): one namespace at a time, live from the session-status stream.

import { api, sessionPath } from "./api.js";
import { clean, h, replace, when } from "./dom.js";
import { NamespaceWatch } from "./watch.js";
import { matchesSelector, parseSelector } from "./selector.js";

const NAMESPACE_KEY = "agent-sessions.namespace";
const PHASES = ["Pending", "Creating", "Running", "Stopping", "Stopped", "Completed", "Failed", "Terminating"];
const COLUMNS = [
  ["name", "Name"], ["phase", "Phase"], ["ready", "Ready"], ["reason", "Reason"], ["provider", "Provider"],
  ["title", "Title"], ["health", "Health"], ["last-activity", "Last activity"],
];

export function renderList(main, { namespace: fromRoute }) {
  const state = {
    namespace: fromRoute || sessionStorage.getItem(NAMESPACE_KEY) || "default",
    sessions: new Map(), // name → summary
    rows: new Map(), // name → tr
    selected: new Set(), // "ns/name"
    selector: [],
    phase: "",
    watch: null,
  };

  const namespaceSelect = h("select", { id: "namespace", name: "namespace" });
  const namespaceOther = h("input", { id: "namespace-other", name: "namespace-other", type: "text",
    autocomplete: "off", spellcheck: "false", placeholder: "type one, then Enter" });
  const labelFilter = h("input", { id: "label-filter", name: "label-filter", type: "text", autocomplete: "off",
    spellcheck: "false", placeholder: "app=web,tier!=db", "aria-describedby": "label-filter-help" });
  const labelHelp = h("span", { id: "label-filter-help", class: "help" }, "A label selector: k=v, k!=v, k, !k");
  const phaseFilter = h("select", { id: "phase-filter", name: "phase-filter" },
    h("option", { value: "" }, "All phases"), PHASES.map((phase) => h("option", { value: phase }, phase)));
  const streamState = h("span", { id: "stream-state", role: "status", "aria-live": "polite" }, "connecting");
  const streamDetail = h("span", { class: "stream-detail" });
  const listError = h("p", { id: "list-error", class: "error", role: "alert" });
  const caption = h("caption", {});
  const body = h("tbody", {});
  const table = h("table", { id: "sessions", class: "sessions" }, caption,
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select to open side by side")),
      COLUMNS.map(([, label]) => h("th", { scope: "col" }, label)))),
    body);
  const openSelected = h("button", { id: "open-selected", type: "button", disabled: true,
    on: { click: () => { location.hash = chatHash([...state.selected]); } } }, "Open selected side by side");

  replace(main,
    h("h1", {}, "Sessions"),
    h("form", { class: "filters", role: "search", "aria-label": "Filter sessions", on: { submit: (e) => e.preventDefault() } },
      h("div", { class: "field" }, h("label", { for: "namespace" }, "Namespace"), namespaceSelect),
      h("div", { class: "field" }, h("label", { for: "namespace-other" }, "Other namespace"), namespaceOther),
      h("div", { class: "field" }, h("label", { for: "label-filter" }, "Labels"), labelFilter, labelHelp),
      h("div", { class: "field" }, h("label", { for: "phase-filter" }, "Phase"), phaseFilter)),
    h("p", { class: "stream" }, "Updates: ", streamState, " ", streamDetail),
    listError,
    h("div", { class: "table-wrap" }, table),
    h("p", { class: "actions" }, openSelected));

  function setNamespaceOptions(names) {
    const all = [...new Set([...names, state.namespace])].sort();
    namespaceSelect.replaceChildren(...all.map((name) => h("option", { value: name }, name)));
    namespaceSelect.value = state.namespace;
  }

  function follow(namespace) {
    state.watch?.stop();
    state.namespace = namespace;
    sessionStorage.setItem(NAMESPACE_KEY, namespace);
    state.sessions = new Map();
    listError.textContent = "";
    streamDetail.textContent = "";
    caption.textContent = `Sessions in namespace ${namespace}`;
    renderRows();
    state.watch = new NamespaceWatch(namespace, {
      sessions: (map) => {
        state.sessions = new Map(map);
        renderRows();
      },
      changed: (summary) => {
        state.sessions.set(summary.name, summary);
        renderRows();
      },
      deleted: (name) => {
        state.sessions.delete(name);
        renderRows();
      },
      state: (value, message) => {
        streamState.textContent = value;
        streamDetail.textContent = message ? `(${message})` : "";
        if (value === "stopped") fallbackList(namespace, message);
      },
    }).start();
  }

  /** The stream was refused (no `watch` right?): show the list once, if `list` is allowed. */
  async function fallbackList(namespace, message) {
    try {
      const answer = await api(sessionPath(namespace));
      if (state.namespace !== namespace) return;
      state.sessions = new Map(answer.items.map((item) => [item.name, item]));
      renderRows();
      listError.textContent = `Not updated live: ${message || "the status stream was refused"}.`;
    } catch (error) {
      if (state.namespace !== namespace) return;
      listError.textContent = `Cannot list sessions in ${namespace}: ${error.message}`;
      state.sessions = new Map();
      renderRows();
    }
  }

  function visible(summary) {
    if (state.phase && summary.phase !== state.phase) return false;
    if (state.selector.length && summary.labels && typeof summary.labels === "object") {
      return matchesSelector(state.selector, summary.labels);
    }
    return true;
  }

  function renderRows() {
    const names = [...state.sessions.keys()].sort();
    for (const name of [...state.rows.keys()]) if (!state.sessions.has(name)) state.rows.delete(name);
    const wanted = [];
    for (const name of names) {
      const summary = state.sessions.get(name);
      let row = state.rows.get(name);
      if (!row) {
        row = newRow(state.namespace, name);
        state.rows.set(name, row);
      }
      fillRow(row, summary);
      if (visible(summary)) wanted.push(row);
    }
    if (!wanted.length) {
      const text = state.sessions.size ? "No session matches the filters." : "No sessions (yet).";
      body.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length + 1 }, text)));
      return;
    }
    for (const extra of [...body.children]) if (!wanted.includes(extra)) extra.remove();
    wanted.forEach((row, index) => {
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    });
  }

  function newRow(namespace, name) {
    const key = `${namespace}/${name}`;
    const box = h("input", { type: "checkbox", class: "open-side-by-side", "aria-label": `Select ${name} to open side by side` });
    box.checked = state.selected.has(key);
    box.addEventListener("change", () => {
      if (box.checked) state.selected.add(key);
      else state.selected.delete(key);
      openSelected.disabled = state.selected.size === 0;
    });
    const cells = Object.fromEntries(COLUMNS.map(([col]) => [col, h("td", { data: { col } })]));
    cells.name.append(h("a", { href: `#/sessions/${namespace}/${name}` }, name));
    return h("tr", { data: { session: key } }, h("td", { class: "select" }, box), Object.values(cells));
  }

  function fillRow(row, summary) {
    const cell = (col) => row.querySelector(`td[data-col="${col}"]`);
    const ready = summary.ready?.status || "Unknown";
    setText(cell("phase"), summary.phase || "—");
    setText(cell("ready"), ready);
    cell("ready").dataset.status = ready;
    setText(cell("reason"), summary.ready?.reason || "");
    if (summary.ready?.message) cell("reason").title = clean(summary.ready.message);
    else cell("reason").removeAttribute("title");
    setText(cell("provider"), summary.provider || "");
    setText(cell("title"), summary.title || summary.sessionInfo?.title || "");
    setText(cell("health"), summary.health || "");
    const activity = cell("last-activity");
    const stamp = summary.lastActivityTime;
    if (!stamp) setText(activity, "");
    else if (activity.firstChild?.dateTime !== stamp) activity.replaceChildren(h("time", { datetime: stamp }, when(stamp)));
  }

  namespaceSelect.addEventListener("change", () => follow(namespaceSelect.value));
  namespaceOther.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const value = namespaceOther.value.trim();
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value) || value.length > 63) {
      namespaceOther.setAttribute("aria-invalid", "true");
      listError.textContent = `"${value}" is not a namespace name.`;
      return;
    }
    namespaceOther.removeAttribute("aria-invalid");
    namespaceOther.value = "";
    setNamespaceOptions([...namespaceSelect.options].map((o) => o.value).concat(value));
    namespaceSelect.value = value;
    follow(value);
  });
  labelFilter.addEventListener("input", () => {
    try {
      state.selector = parseSelector(labelFilter.value);
      labelFilter.removeAttribute("aria-invalid");
      labelHelp.textContent = "A label selector: k=v, k!=v, k, !k";
    } catch (error) {
      labelFilter.setAttribute("aria-invalid", "true");
      labelHelp.textContent = error.message;
      return;
    }
    renderRows();
  });
  phaseFilter.addEventListener("change", () => {
    state.phase = phaseFilter.value;
    renderRows();
  });

  setNamespaceOptions([]);
  follow(state.namespace);
  api("/v1/namespaces").then((answer) => {
    const names = (answer.items || []).map((item) => item.name).filter(Boolean);
    if (!fromRoute && !sessionStorage.getItem(NAMESPACE_KEY) && names.length && !names.includes(state.namespace)) {
      follow(names[0]);
    }
    setNamespaceOptions(names);
  }).catch(() => {
    // no namespace list (an older gateway, or the caller may not ask): the typed one works
  });

  const ticker = setInterval(() => {
    for (const time of body.querySelectorAll("time[datetime]")) time.textContent = when(time.dateTime);
  }, 30000);
  return () => {
    state.watch?.stop();
    clearInterval(ticker);
  };
}

function setText(node, text) {
  const value = clean(text);
  if (node.textContent !== value) node.textContent = value;
}

/** The hash of the chat page for sessions "ns/name". */
export function chatHash(keys) {
  return "#/chat?" + keys.map((key) => `s=${key}`).join("&");
}
