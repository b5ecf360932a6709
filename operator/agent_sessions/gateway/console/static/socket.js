// The one WebSocket (`/v1/ws`, protocol in gateway/ws_protocol.py) that every chat pane shares.
//
// A browser cannot set headers on a WebSocket, so the token travels as a subprotocol
// (`base64url.bearer.authorization.k8s.io.<token>`) next to `agent-sessions.v1`, which the
// gateway selects; it is a header of the upgrade request, never part of the URL. The socket opens
// when the first pane needs it and closes when the last one leaves. When it drops, it reconnects
// with backoff, and each pane subscribes again after the last seq it has (`reopened`), so
// nothing is lost or shown twice.

import { api, backoff, token, tokenSubprotocol } from "./api.js";

const PROTOCOL = "agent-sessions.v1";

class SessionSocket {
  constructor() {
    this.panes = new Map(); // "ns/name" → pane
    this.ws = null;
    this.open = false;
    this.attempt = 0;
    this.timer = null;
    this.nextId = 1;
  }

  /** Add a pane: it gets `reopened()` whenever the socket (re)opens, `receive(frame)` for its
   * session's frames, `socketState("connected"|"reconnecting")`. */
  attach(key, pane) {
    this.panes.set(key, pane);
    if (this.ws === null) this.connect();
    else if (this.open) {
      pane.socketState("connected");
      pane.reopened();
    } else pane.socketState(this.attempt > 0 ? "reconnecting" : "connecting");
  }

  detach(key) {
    this.panes.delete(key);
    if (this.panes.size === 0) this.shutdown();
  }

  /** A request id unique on this page, prefixed with the pane's key (errors route by it). */
  requestId(key) {
    return `${key}#${this.nextId++}`;
  }

  /** Send a frame; false when the socket is not open (the pane says so to the user). */
  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    clearTimeout(this.timer);
    const value = token.get();
    if (!value) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/v1/ws`, [tokenSubprotocol(value), PROTOCOL]);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.attempt = 0;
      for (const pane of this.panes.values()) {
        pane.socketState("connected");
        pane.reopened();
      }
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.route(frame);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      const wasOpen = this.open;
      this.open = false;
      if (this.panes.size === 0) {
        this.ws = null;
        return;
      }
      for (const pane of this.panes.values()) pane.socketState("reconnecting");
      if (!wasOpen) this.checkToken();
      this.retry();
    });
  }

  route(frame) {
    let key = null;
    if (frame.session && frame.session.namespace && frame.session.name) {
      key = `${frame.session.namespace}/${frame.session.name}`;
    } else if (typeof frame.id === "string" && frame.id.includes("#")) {
      key = frame.id.slice(0, frame.id.lastIndexOf("#"));
    }
    const pane = key === null ? null : this.panes.get(key);
    pane?.receive(frame);
  }

  retry() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), backoff(this.attempt++));
  }

  /** A socket that never opened may have been refused for its token (401 at the upgrade, which
   * a browser does not show): ask the API, which signs the user out if so. */
  checkToken() {
    api("/v1/providers").catch(() => {}); // a 401 signs out (api.js)
  }

  shutdown() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "no pane open");
  }
}

/** The page's socket. */
export const sessionSocket = new SessionSocket();
