// A chat pane: one session's transcript, live over the shared WebSocket, with a composer.
//
// Frames (`seq`-numbered session updates, docs/gateway.md) are applied in seq order, each once:
// a frame whose seq the pane already has is dropped, and after a reconnect the pane subscribes
// again with `after_seq` = the last seq it has. The pane starts from the last PAGE frames of the
// history (the subscription replays them) and "Load earlier" fetches older pages over HTTP.

import { ApiError, api, sessionPath } from "./api.js";
import { clean, h, jsonText, replace } from "./dom.js";
import { linkAllowed, renderMarkdown } from "./markdown.js";
import { sessionSocket } from "./socket.js";

const PAGE = 100;
const NO_ACCESS_API = { get: true, list: true, watch: true, patch: false, send: true, cancel: true };

/** What the caller may do with a session (`…/access`); for a gateway without that endpoint, a
 * guess that the gateway itself still checks (only reading and sending are offered). */
export async function sessionAccess(namespace, name) {
  try {
    const answer = await api(sessionPath(namespace, name, "/access"));
    return answer.allowed || {};
  } catch (error) {
    if (error instanceof ApiError && error.code === "not_found") return NO_ACCESS_API;
    throw error;
  }
}

export class ChatPane {
  /** `options`: `allowed` (skip asking), `heading` ("h2" text or node), `onTitle(title)`. */
  constructor(namespace, name, options = {}) {
    this.namespace = namespace;
    this.name = name;
    this.key = `${namespace}/${name}`;
    this.options = options;
    this.allowed = options.allowed || null;
    this.uid = null;
    this.lastSeq = null; // the highest seq shown
    this.earliest = null; // every frame after this seq is (or will be) shown
    this.subscribed = false;
    this.noticeSticky = false; // the notice is about a message of the user's (see setNotice)
    this.retries = 0;
    this.retryTimer = null;
    this.disposed = false;
    this.pending = new Map(); // request id → text, for sends awaiting their reply
    this.turnRunning = false;
    this.tools = new Map(); // toolCallId → li
    this.idBase = `pane-${namespace}-${name}`.replace(/[^\w-]/g, "-");
    this.build();
  }

  build() {
    this.state = h("span", { class: "chat-state", role: "status", "aria-live": "polite", data: { state: "connecting" } }, "connecting");
    this.title = h("span", { class: "chat-title muted" });
    this.notice = h("p", { class: "chat-notice", role: "status", "aria-live": "polite" });
    this.earlier = h("button", { type: "button", class: ["load-earlier", "secondary"], hidden: true,
      on: { click: () => this.loadEarlier() } }, "Load earlier messages");
    this.transcript = h("ol", { class: "transcript", "aria-live": "polite", "aria-relevant": "additions text",
      "aria-label": `Messages of ${this.key}` });
    this.scroller = h("div", { class: "chat-scroll", tabindex: "0", role: "region", "aria-label": `Transcript of ${this.key}` },
      this.earlier, this.transcript);
    const heading = this.options.heading ?? h("a", { href: `#/sessions/${this.namespace}/${this.name}` }, this.key);
    this.composerSlot = h("div", { class: "composer-slot" });
    this.element = h("section", { class: "chat-pane", data: { session: this.key }, "aria-labelledby": `${this.idBase}-heading` },
      h("div", { class: "chat-head" },
        h("h2", { id: `${this.idBase}-heading` }, heading, " ", this.title),
        this.state),
      this.notice,
      this.scroller,
      this.composerSlot);
    this.live = new Transcript(this, this.transcript);
  }

  async start() {
    try {
      if (!this.allowed) this.allowed = await sessionAccess(this.namespace, this.name);
    } catch (error) {
      this.setNotice(`Cannot read this session: ${error.message}`);
      this.allowed = {};
    }
    if (this.disposed) return;
    this.buildComposer();
    if (this.allowed.get === false) {
      this.setNotice("You may not read this session.");
      return;
    }
    sessionSocket.attach(this.key, this);
  }

  buildComposer() {
    if (!this.allowed.send) {
      replace(this.composerSlot, h("p", { class: "chat-readonly" }, "You may read this session but not send to it."));
      return;
    }
    const inputId = `${this.idBase}-input`;
    this.input = h("textarea", { id: inputId, class: "message-input", rows: "2", name: "message",
      "aria-describedby": `${this.idBase}-hint` });
    this.sendButton = h("button", { type: "submit", class: "send" }, "Send");
    this.cancelButton = h("button", { type: "button", class: ["cancel", "danger"], hidden: true,
      on: { click: () => this.cancelTurn() } }, "Cancel turn");
    const form = h("form", { class: "composer", "aria-label": `Message to ${this.key}` },
      h("div", { class: "composer-field" },
        h("label", { for: inputId }, "Message"),
        this.input,
        h("span", { id: `${this.idBase}-hint`, class: "help" }, "Enter sends, Shift+Enter starts a new line.")),
      h("div", { class: "composer-buttons" }, this.sendButton, this.cancelButton));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendMessage();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendMessage();
      }
    });
    replace(this.composerSlot, form);
    this.showTurn();
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    if (this.subscribed) sessionSocket.send({ type: "unsubscribe", namespace: this.namespace, name: this.name });
    sessionSocket.detach(this.key);
  }

  /** The session may be serving now (it was started): subscribe at once if not subscribed. */
  poke() {
    if (this.subscribed || this.disposed || !sessionSocket.open) return;
    clearTimeout(this.retryTimer);
    this.retries = 0;
    this.subscribe();
  }

  socketState(state) {
    this.state.textContent = state;
    this.state.dataset.state = state;
    if (state !== "connected") {
      // requests die with the socket; a turn still running shows up in the resubscription
      this.subscribed = false;
      if (this.pending.size && this.notice.textContent === "Sending…") {
        this.setNotice("The connection dropped while sending: the reply, if any, shows when it is back.", { sticky: true });
      }
      this.pending.clear();
      this.showTurn();
    }
  }

  /** The socket (re)opened: subscribe after what the pane has. */
  reopened() {
    clearTimeout(this.retryTimer);
    this.subscribe();
  }

  async subscribe() {
    if (this.disposed) return;
    if (this.lastSeq === null) {
      // nothing shown yet: the last PAGE frames (from a turn's start) over HTTP, then subscribe
      // after them
      try {
        const head = await api(sessionPath(this.namespace, this.name, "?after_seq=0&limit=1"));
        this.showTitle(head.info?.title || head.info?.sessionInfo?.title);
        if (head.session?.uid) this.uid = head.session.uid;
        if (head.lastSeq === null || head.lastSeq === undefined) {
          this.setNotice(`The session is not running (phase ${head.info?.phase || "unknown"}); its messages appear when it runs.`);
          this.retryLater();
          return;
        }
        const from = Math.max(0, head.lastSeq - PAGE);
        const page = from === 0 && head.lastSeq <= 1 ? head
          : await api(sessionPath(this.namespace, this.name, `?after_seq=${from}&limit=${PAGE}`));
        if (this.disposed || this.lastSeq !== null) return;
        const { items, earliest } = fromTurnStart(page.items || [], from);
        this.earliest = earliest;
        this.earlier.hidden = earliest <= 0;
        for (const frame of items) this.show(frame);
        if (this.lastSeq === null) this.lastSeq = Math.max(earliest, head.lastSeq);
      } catch (error) {
        this.setNotice(error.message);
        if (error.status !== 403 && error.status !== 401) this.retryLater();
        return;
      }
    }
    sessionSocket.send({ type: "subscribe", namespace: this.namespace, name: this.name, after_seq: this.lastSeq });
  }

  retryLater() {
    clearTimeout(this.retryTimer);
    const seconds = Math.min(30, 2 + 2 * this.retries++);
    this.retryTimer = setTimeout(() => {
      if (sessionSocket.open) this.subscribe();
    }, seconds * 1000);
  }

  /** Show `text` under the transcript. A `sticky` one (about a message of the user's) stays until
   * the user sends again; any other is replaced by the next, or cleared by a subscription. */
  setNotice(text, { sticky = false } = {}) {
    this.notice.textContent = clean(text);
    this.noticeSticky = sticky;
  }

  showTitle(title) {
    this.title.textContent = title ? `— ${clean(title)}` : "";
    if (title) this.options.onTitle?.(title);
  }

  receive(frame) {
    if (frame.session?.uid && this.uid && frame.session.uid !== this.uid) {
      // another session under the same name: start over from its history
      this.reset();
      this.uid = frame.session.uid;
      this.subscribe();
      return;
    }
    if (frame.session?.uid) this.uid = frame.session.uid;
    const seq = Number.isInteger(frame.seq) ? frame.seq : null;
    if (frame.type === "subscribed") {
      this.subscribed = true;
      this.retries = 0;
      if (!this.noticeSticky) this.setNotice("");
      return;
    }
    if (frame.type === "cancelled") {
      this.setNotice(frame.cancelled ? "Cancel requested." : "There was no turn to cancel.");
      return;
    }
    if (frame.type === "error" && seq === null) {
      this.failed(frame);
      return;
    }
    if (seq === null || !["event", "done", "error"].includes(frame.type)) return;
    if (frame.id !== undefined && this.pending.has(frame.id) && this.notice.textContent === "Sending…") this.setNotice("");
    if (frame.id !== undefined && (frame.type === "done" || frame.type === "error")) this.pending.delete(frame.id);
    this.show(frame);
  }

  /** Show a frame after those shown (a frame already shown is dropped). */
  show(frame) {
    const seq = frame.seq;
    if (!Number.isInteger(seq) || (this.lastSeq !== null && seq <= this.lastSeq)) return;
    const follow = this.nearBottom();
    this.live.apply(frame);
    this.lastSeq = seq;
    if (this.earliest === null) this.earliest = Math.max(0, seq - 1);
    this.showTurn();
    if (follow) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** A request of this pane failed (subscribe, send or cancel). */
  failed(frame) {
    const message = `${frame.message || frame.code}`;
    if (frame.id !== undefined && this.pending.has(frame.id)) {
      const text = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      if (this.input && !this.input.value) this.input.value = text; // not lost: back in the box
      this.setNotice(`Not sent: ${message}`, { sticky: true });
      this.showTurn();
      return;
    }
    if (frame.id !== undefined) {
      this.setNotice(message);
      return;
    }
    // the subscription failed or ended
    this.subscribed = false;
    this.setNotice(frame.code === "session_not_running" ? `${message}; its messages appear when it runs.` : message);
    if (frame.code !== "forbidden") this.retryLater();
  }

  /** The session was deleted and made again under the same name: its seqs start over. */
  reset() {
    this.transcript.replaceChildren();
    this.tools.clear();
    this.live = new Transcript(this, this.transcript);
    this.lastSeq = null;
    this.earliest = null;
    this.earlier.hidden = true;
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  sendMessage() {
    const text = this.input.value;
    if (!text.trim()) return;
    const id = sessionSocket.requestId(this.key);
    const sent = sessionSocket.send({ type: "send", namespace: this.namespace, name: this.name, id, text });
    if (!sent) {
      this.setNotice("Not connected: the message was not sent (it is still in the box).", { sticky: true });
      return;
    }
    this.pending.set(id, text);
    this.input.value = "";
    this.setNotice("Sending…");
    this.showTurn();
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  cancelTurn() {
    if (!sessionSocket.send({ type: "cancel", namespace: this.namespace, name: this.name, id: sessionSocket.requestId(this.key) })) {
      this.setNotice("Not connected: cannot cancel now.");
    }
  }

  showTurn() {
    const running = this.live.running || this.pending.size > 0;
    this.transcript.setAttribute("aria-busy", running ? "true" : "false");
    if (this.cancelButton) this.cancelButton.hidden = !running || this.allowed?.send === false;
  }

  async loadEarlier() {
    if (this.earliest === null || this.earliest <= 0) return;
    const until = this.earliest;
    const from = Math.max(0, until - PAGE);
    this.earlier.disabled = true;
    try {
      const page = await api(sessionPath(this.namespace, this.name, `?after_seq=${from}&limit=${until - from}`));
      const { items, earliest } = fromTurnStart((page.items || []).filter((f) => Number.isInteger(f.seq) && f.seq <= until), from);
      const fragment = document.createDocumentFragment();
      const older = new Transcript(this, fragment);
      for (const frame of items) older.apply(frame);
      older.close();
      const before = this.scroller.scrollHeight - this.scroller.scrollTop;
      this.transcript.prepend(fragment);
      this.scroller.scrollTop = this.scroller.scrollHeight - before;
      this.earliest = earliest;
      this.earlier.hidden = earliest <= 0;
      if (this.earlier.hidden) this.scroller.focus();
    } catch (error) {
      this.setNotice(`Could not load earlier messages: ${error.message}`);
    } finally {
      this.earlier.disabled = false;
    }
  }
}

/** Turns frames into transcript items, appended to `container` (the list, or a fragment of
 * older items to put before it). */
class Transcript {
  constructor(pane, container) {
    this.pane = pane;
    this.container = container;
    this.running = false;
    this.agent = null; // the agent message being written
    this.thought = null;
    this.streamed = []; // agent messages of the current turn
    this.usage = null; // the turn's last usage_update
    this.plan = null;
  }

  apply(frame) {
    const update = frame.update || {};
    switch (frame.event) {
      case "user_message":
        this.endTurn(null);
        this.running = true;
        this.add(item("user", frame.seq, "User", h("div", { class: "message-body" }, blocksText(update.content))));
        return;
      case "agent_message_chunk":
        this.thought = null;
        this.running = true;
        if (!this.agent) {
          this.agent = item("agent", frame.seq, "Agent", h("div", { class: "message-body" }));
          this.agent.dataset.streaming = "true";
          this.agent.text = "";
          this.streamed.push(this.agent);
          this.add(this.agent);
        }
        this.agent.text += blockText(update.content);
        replace(this.agent.querySelector(".message-body"), renderMarkdown(this.agent.text));
        return;
      case "agent_thought_chunk":
        if (!this.thought) {
          this.thought = item("thought", frame.seq, "Thinking", h("div", { class: "message-body" }));
          this.thought.text = "";
          this.add(this.thought);
        }
        this.thought.text += blockText(update.content);
        this.thought.querySelector(".message-body").textContent = clean(this.thought.text);
        return;
      case "tool_call":
      case "tool_call_update":
        this.agent = null;
        this.thought = null;
        this.tool(frame, update);
        return;
      case "plan":
        this.planItem(frame, update);
        return;
      case "usage_update":
        this.usage = update;
        return;
      case "session_info_update":
        if (typeof update.title === "string") this.pane.showTitle(update.title);
        return;
      case "done":
        this.endTurn(frame);
        return;
      case "error":
        this.add(item("error", frame.seq, "Error", h("div", { class: "message-body" },
          `The turn failed: ${frame.message || frame.code || "unknown error"}`)));
        this.endTurn(null);
        return;
      default:
    }
  }

  add(node) {
    this.container.append(node);
  }

  tool(frame, update) {
    const id = clean(update.toolCallId || `seq-${frame.seq}`);
    let node = this.pane.tools.get(id);
    if (!node) {
      node = h("li", { class: "message", data: { role: "tool", toolCallId: id, seq: frame.seq, status: "pending" } },
        h("div", { class: "tool-head" },
          h("span", { class: "message-who" }, "Tool"),
          h("span", { class: "tool-title" }, "tool call"),
          h("span", { class: "tool-status" }, "pending")),
        h("div", { class: "tool-output" }));
      this.pane.tools.set(id, node);
      this.add(node);
    }
    if (typeof update.title === "string") node.querySelector(".tool-title").textContent = clean(update.title);
    if (typeof update.status === "string" && /^(pending|in_progress|completed|failed)$/.test(update.status)) {
      node.dataset.status = update.status;
      node.querySelector(".tool-status").textContent = update.status.replace("_", " ");
    }
    if (Array.isArray(update.content)) {
      node.querySelector(".tool-output").textContent = clean(update.content.map(toolContentText).filter(Boolean).join("\n"));
    }
  }

  planItem(frame, update) {
    const entries = Array.isArray(update.entries) ? update.entries : [];
    const list = h("ol", {}, entries.map((entry) => h("li", { data: { status: entry?.status } },
      `${entry?.content ?? ""}${entry?.status ? ` (${String(entry.status).replace("_", " ")})` : ""}`)));
    if (!this.plan) {
      this.plan = item("plan", frame.seq, "Plan", h("div", { class: "message-body" }));
      this.add(this.plan);
    }
    replace(this.plan.querySelector(".message-body"), list);
  }

  /** The turn is over: `frame` is its `done` (usage shown), or null (it ended otherwise). */
  endTurn(frame) {
    for (const node of this.streamed) node.dataset.streaming = "false";
    if (frame) {
      const parts = [];
      const usage = frame.usage;
      if (usage && Number.isFinite(usage.totalTokens)) {
        const detail = [usage.inputTokens !== undefined ? `${usage.inputTokens} in` : null,
          usage.outputTokens !== undefined ? `${usage.outputTokens} out` : null].filter(Boolean).join(", ");
        parts.push(`${usage.totalTokens} tokens${detail ? ` (${detail})` : ""}`);
      }
      if (this.usage && Number.isFinite(this.usage.used)) {
        parts.push(`context ${this.usage.used.toLocaleString("en")}${Number.isFinite(this.usage.size) ? ` / ${this.usage.size.toLocaleString("en")}` : ""}`);
      }
      const stop = frame.stopReason && frame.stopReason !== "end_turn" ? `stopped: ${String(frame.stopReason).replace("_", " ")}` : null;
      this.add(h("li", { class: "turn-end", data: { seq: frame.seq } },
        h("span", { class: "usage" }, parts.length ? parts.join(" · ") : "no usage reported"),
        stop ? h("span", { class: "stop-reason" }, ` · ${stop}`) : null));
    }
    this.running = false;
    this.agent = null;
    this.thought = null;
    this.plan = null;
    this.streamed = [];
    this.usage = null;
  }

  /** An older page is complete: a turn it leaves open goes on in the items after it. */
  close() {
    for (const node of this.streamed) node.dataset.streaming = "false";
  }
}

/**
 * The frames of a history page after `from` that start at a turn's start (its user message), so
 * that a page never shows the tail of a turn whose beginning is on the page before; `earliest` is
 * the seq before the first one kept. A page that starts the history, or holds no user message (a
 * turn longer than a page), is kept whole.
 */
function fromTurnStart(items, from) {
  if (from === 0) return { items, earliest: 0 };
  const start = items.findIndex((frame) => frame.event === "user_message");
  if (start <= 0) return { items, earliest: from };
  return { items: items.slice(start), earliest: items[start].seq - 1 };
}

function item(role, seq, who, body) {
  return h("li", { class: "message", data: { role, seq: seq ?? null } }, h("span", { class: "message-who" }, who), body);
}

function blockText(block) {
  if (!block || typeof block !== "object") return "";
  if (block.type === "text") return String(block.text ?? "");
  if (block.type === "image") return "\n[an image, not shown]\n";
  if (block.type === "audio") return "\n[audio, not played]\n";
  if (block.type === "resource_link") {
    const uri = String(block.uri ?? "");
    return `\n[${String(block.name || block.title || uri).replace(/[[\]]/g, "")}]${linkAllowed(uri) ? `(${uri})` : ""}\n`;
  }
  if (block.type === "resource") return `\n[a resource: ${String(block.resource?.uri ?? "")}]\n`;
  return "";
}

function blocksText(blocks) {
  return Array.isArray(blocks) ? blocks.map(blockText).join("") : "";
}

function toolContentText(entry) {
  if (!entry || typeof entry !== "object") return "";
  if (entry.type === "content") return blockText(entry.content).trim();
  if (entry.type === "diff") return `diff of ${entry.path ?? "a file"}`;
  if (entry.type === "terminal") return `terminal ${entry.terminalId ?? ""}`;
  return jsonText(entry);
}
