// Building DOM nodes safely (docs/console.md, "Security").
//
// Everything the console shows that came from the cluster or an agent goes through `h()` and
// `clean()`: text is always a Text node (never parsed as HTML), attributes are set one by one
// (never `style`, never an `on…` handler attribute), and control characters and bidi overrides
// are removed first, so that agent text cannot reorder or hide what is around it.

// C0 controls except \t and \n, DEL, C1 controls, and the bidi marks, embeddings, overrides and
// isolates (U+061C, U+200E-F, U+202A-E, U+2066-9).
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** `value` as display text: a string without control characters or bidi overrides. */
export function clean(value) {
  if (value === null || value === undefined) return "";
  return String(value).replace(UNSAFE, "");
}

/**
 * A new element: `h("a", {href, class: "x", data: {session: "ns/n"}, on: {click}}, child, …)`.
 * Children are nodes, strings (as cleaned text), arrays of them, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") node.textContent = clean(value);
    else if (key === "data") for (const [name, v] of Object.entries(value)) {
      if (v !== null && v !== undefined) node.dataset[name] = clean(v);
    }
    else if (key === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (key === "style" || key.toLowerCase().startsWith("on")) throw new Error(`refusing attribute ${key}`);
    else if ((key === "href" || key === "src") && !safeUrl(value)) throw new Error(`refusing ${key} ${value}`);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, clean(value));
  }
  append(node, children);
  return node;
}

/** Whether `url` may be a link or source: this console's own routes, or http(s) elsewhere. */
export function safeUrl(url) {
  const text = String(url);
  if (text.startsWith("#") || (text.startsWith("/") && !text.startsWith("//"))) return true;
  try {
    const parsed = new URL(text);
    return parsed.protocol === "https:" || parsed.protocol === "http:";
  } catch {
    return false;
  }
}

/** Append children (as in `h`) to `node`; returns `node`. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(clean(child)));
  }
  return node;
}

/** Replace the children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A definition list of `[term, value]` pairs (values: text or nodes). */
export function definitions(pairs, props = {}) {
  const list = h("dl", props);
  for (const [term, value] of pairs) list.append(h("dt", {}, term), h("dd", {}, value));
  return list;
}

/** JSON as display text (one line for scalars, indented for objects). */
export function jsonText(value) {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return typeof value === "object" && value !== null ? JSON.stringify(value, null, 2) : JSON.stringify(value);
}

/** A `<time>` showing how long ago `timestamp` was, the full time as its tooltip. */
export function ago(timestamp) {
  if (!timestamp) return "";
  const full = when(timestamp);
  const short = full.replace(/^.*\((.*)\)$/, "$1");
  return h("time", { datetime: timestamp, title: full }, short);
}

/** A timestamp as "2026-12-07 00:10:33 UTC (3 min ago)"; "" for none. */
export function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return clean(timestamp);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  let ago;
  if (seconds < 5) ago = "just now";
  else if (seconds < 90) ago = `${seconds} s ago`;
  else if (seconds < 5400) ago = `${Math.round(seconds / 60)} min ago`;
  else if (seconds < 129600) ago = `${Math.round(seconds / 3600)} h ago`;
  else ago = `${Math.round(seconds / 86400)} d ago`;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC (${ago})`;
}
