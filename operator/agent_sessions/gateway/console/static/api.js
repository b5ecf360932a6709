// The gateway's API as the console uses it (docs/gateway.md): the token, JSON requests, SSE.
//
// The bearer token lives in sessionStorage only (gone when the tab closes) and leaves the page
// only as an `Authorization` header (or, for the WebSocket, as its subprotocol header): never in
// a cookie, never in a URL. A 401 anywhere forgets it and sends the user back to sign-in.

const TOKEN_KEY = "agent-sessions.token";
export const UNAUTHORIZED_EVENT = "agent-sessions:unauthorized";

export const token = {
  get() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A failed request: `status` (0 when the gateway could not be reached), `code`, `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Forget the token and tell the console (it shows sign-in again). */
export function signedOut() {
  token.clear();
  window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
}

function headers(extra = {}) {
  const value = token.get();
  return value ? { Authorization: `Bearer ${value}`, ...extra } : { ...extra };
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.code === "string") code = body.code;
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

/** `path` under the gateway, with the caller's token; the answer's JSON, or an ApiError. */
export async function api(path, { method = "GET", body, signal, token: explicit } = {}) {
  const init = { method, signal, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), cache: "no-store" };
  if (explicit !== undefined) init.headers.Authorization = `Bearer ${explicit}`;
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "the gateway could not be reached");
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && explicit === undefined) signedOut();
    throw error;
  }
  return response.json();
}

/** The path of a namespace's sessions, or of one session (`…/sessions/{name}` + `suffix`). */
export function sessionPath(namespace, name, suffix = "") {
  const base = `/v1/namespaces/${encodeURIComponent(namespace)}/sessions`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}${suffix}`;
}

/**
 * An SSE parser (the HTML standard's event-stream format) for `fetch()` bodies, since
 * EventSource cannot send Authorization. `feed(text)` takes decoded chunks as they arrive and
 * calls `onEvent({event, data, id})` per dispatched event; `lastEventId` follows `id:` lines.
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.event = "";
    this.data = [];
    this.id = null;
    this.lastEventId = null;
    this.sawCr = false;
  }

  feed(text) {
    if (this.sawCr && text.startsWith("\n")) text = text.slice(1); // "\r" then "\n" across chunks
    this.sawCr = text.endsWith("\r");
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\u0000")) this.id = value;
  }

  dispatch() {
    if (this.id !== null) this.lastEventId = this.id;
    const event = { event: this.event || "message", data: this.data.join("\n"), id: this.id };
    const had = this.data.length > 0;
    this.event = "";
    this.data = [];
    this.id = null;
    if (had) this.onEvent(event);
  }
}

/**
 * Read an SSE response at `path` until it ends, is aborted, or stays silent for `silence` ms.
 * Resolves normally when the stream ends; throws an ApiError for a refused request.
 */
export async function readSse(path, { lastEventId, signal, onEvent, onOpen, silence = 45000 }) {
  const extra = { Accept: "text/event-stream" };
  if (lastEventId) extra["Last-Event-ID"] = lastEventId;
  const quiet = new AbortController();
  const abort = () => quiet.abort();
  signal?.addEventListener("abort", abort);
  let timer = setTimeout(abort, silence);
  try {
    let response;
    try {
      response = await fetch(path, { headers: headers(extra), signal: quiet.signal, cache: "no-store" });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ApiError(0, "unreachable", "the gateway could not be reached");
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) signedOut();
      throw error;
    }
    onOpen?.();
    const parser = new SseParser(onEvent);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal?.aborted) throw error;
        return; // dropped or silent too long: the caller reconnects
      }
      if (chunk.done) return;
      clearTimeout(timer);
      timer = setTimeout(abort, silence);
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
}

/** The WebSocket subprotocol that carries a bearer token (the Kubernetes convention). */
export function tokenSubprotocol(value) {
  const bytes = new TextEncoder().encode(value);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const encoded = btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `base64url.bearer.authorization.k8s.io.${encoded}`;
}

/** Seconds to wait before retry number `attempt` (1, 2, 4 … up to `cap`, with some jitter). */
export function backoff(attempt, cap = 8) {
  const base = Math.min(cap, 2 ** Math.min(attempt, 6));
  return (base * (0.75 + Math.random() * 0.5)) * 1000;
}
