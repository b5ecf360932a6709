// Following a namespace's sessions with the session-status stream (docs/gateway.md).
//
// The stream starts with the sessions as `added` events and `synced`; then one event per change,
// each with `id:` (a resourceVersion). A dropped stream is reopened with `Last-Event-ID`, and the
// gateway sends only what changed since; when it cannot (`reset`), the sessions follow again as at
// first. The state shown is replaced only at `synced`, so a session deleted while the stream was
// down disappears, and none flickers away meanwhile.

import { ApiError, backoff, readSse, sessionPath, signedOut } from "./api.js";

export class NamespaceWatch {
  /**
   * `handlers`: `sessions(map)` (the complete state, name → summary), `changed(summary)`,
   * `deleted(name)`, `state("connecting"|"live"|"reconnecting"|"stopped", message?)`.
   */
  constructor(namespace, handlers) {
    this.namespace = namespace;
    this.handlers = handlers;
    this.controller = new AbortController();
    this.lastEventId = null;
    this.pending = new Map(); // sessions received since the (re)start of the state, until synced
    this.collecting = true;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.controller.abort();
  }

  async run() {
    const { signal } = this.controller;
    let attempt = 0;
    this.handlers.state("connecting");
    while (!signal.aborted) {
      let failure = null;
      try {
        await readSse(sessionPath(this.namespace) + "?watch=true", {
          lastEventId: this.lastEventId,
          signal,
          onOpen: () => {
            attempt = 0;
            if (this.lastEventId && !this.collecting) {
              // resumed: only the changes since come, no `synced` (a `reset` may still follow)
              this.handlers.state("live");
            } else { // not resuming: the whole state comes again, then `synced`
              this.pending = new Map();
              this.collecting = true;
            }
          },
          onEvent: (event) => this.receive(event),
        });
      } catch (error) {
        if (signal.aborted) return;
        failure = error;
      }
      if (signal.aborted) return;
      if (failure instanceof ApiError && [401, 403, 404].includes(failure.status)) {
        this.handlers.state("stopped", failure.message);
        return;
      }
      if (this.fatal) {
        this.handlers.state("stopped", this.fatal);
        return;
      }
      this.handlers.state("reconnecting", failure?.message);
      const retryAfter = failure instanceof ApiError && failure.status === 429 ? 10000 : 0;
      await sleep(Math.max(retryAfter, backoff(attempt++)), signal);
    }
  }

  receive({ event, data, id }) {
    let body;
    try {
      body = JSON.parse(data);
    } catch {
      return;
    }
    if (id) this.lastEventId = id;
    switch (event) {
      case "added":
      case "modified":
        if (!body.info) return;
        if (this.collecting) this.pending.set(body.info.name, body.info);
        else this.handlers.changed(body.info);
        return;
      case "deleted":
        if (this.collecting) this.pending.delete(body.info?.name ?? body.session?.name);
        else this.handlers.deleted(body.info?.name ?? body.session?.name);
        return;
      case "synced":
        if (this.collecting) this.handlers.sessions(this.pending);
        this.pending = new Map();
        this.collecting = false;
        this.handlers.state("live");
        return;
      case "reset":
        this.pending = new Map();
        this.collecting = true;
        return;
      case "error":
        // the stream ends after this; the token or the watch right is gone
        this.fatal = body.message || "the status stream was closed by the gateway";
        if (body.code === "unauthorized") signedOut();
        return;
      default:
    }
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
