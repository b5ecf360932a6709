// A small, safe Markdown renderer for agent text (docs/console.md, "Security").
//
// Agent output is untrusted. This renderer never parses HTML: it builds DOM nodes and sets text
// with Text nodes only, so `<script>` or `<img onerror=…>` in a reply is shown as the characters
// it is made of. The subset: paragraphs (a single newline is a line break), headings (shown two
// levels down, under the page's own), emphasis, strong, strike-through, code spans, fenced code,
// block quotes, bullet and numbered lists, rules, and links — only http(s), opened in a new tab
// with rel="noopener noreferrer". No images, no raw HTML, no other URL schemes. Control characters
// and bidi overrides are removed before anything else (`clean`).
//
// Hostile input costs linear time: a delimiter without a closer is remembered as such, so a
// reply of ten thousand `*` does not make ten thousand scans, and nesting is bounded.

import { clean } from "./dom.js";

const MAX_DEPTH = 12;
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(\s+|$)(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/** `text` as a DocumentFragment of safe nodes. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  blocks(clean(text).split("\n"), fragment, 0);
  return fragment;
}

/** Whether `url` may be a link target: an absolute http or https URL. */
export function linkAllowed(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:";
  } catch {
    return false;
  }
}

function el(tag, ...children) {
  const node = document.createElement(tag);
  for (const child of children) node.append(child);
  return node;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || ITEM.test(line) || QUOTE.test(line);
}

function blocks(lines, parent, depth) {
  if (depth > MAX_DEPTH) {
    parent.append(el("p", lines.join("\n")));
    return;
  }
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      const marker = match[1];
      const body = [];
      i++;
      while (i < lines.length && !isClosingFence(lines[i], marker)) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      const code = el("code", body.join("\n"));
      const language = match[2].replace(/[^\w+-]/g, "").slice(0, 32);
      if (language) code.className = `language-${language}`;
      parent.append(el("pre", code));
      continue;
    }
    if ((match = RULE.exec(line))) {
      parent.append(document.createElement("hr"));
      i++;
      continue;
    }
    if ((match = HEADING.exec(line))) {
      const level = Math.min(6, match[1].length + 2);
      const heading = document.createElement(`h${level}`);
      inline(match[2] || "", heading, depth);
      parent.append(heading);
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        body.push(match[1]);
        i++;
      }
      const quote = document.createElement("blockquote");
      blocks(body, quote, depth + 1);
      parent.append(quote);
      continue;
    }
    if ((match = ITEM.exec(line))) {
      i = list(lines, i, parent, depth);
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && (paragraph.length === 0 || !startsBlock(lines[i]))) {
      paragraph.push(lines[i].trim());
      i++;
    }
    const p = document.createElement("p");
    paragraph.forEach((text, index) => {
      if (index) p.append(document.createElement("br"));
      inline(text, p, depth);
    });
    parent.append(p);
  }
}

function isClosingFence(line, marker) {
  const trimmed = line.trim();
  return trimmed.length >= marker.length && trimmed[0] === marker[0] && /^([`~])\1*$/.test(trimmed);
}

/** A list starting at `lines[start]`; returns the index after it. */
function list(lines, start, parent, depth) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const node = document.createElement(ordered ? "ol" : "ul");
  if (ordered) {
    const number = parseInt(first[2], 10);
    if (number !== 1 && Number.isFinite(number)) node.setAttribute("start", String(number));
  }
  let i = start;
  while (i < lines.length) {
    const match = ITEM.exec(lines[i]);
    if (!match || /\d/.test(match[2]) !== ordered) break;
    const indent = match[1].length + match[2].length + Math.max(1, Math.min(4, match[3].length || 1));
    const body = [match[4]];
    i++;
    while (i < lines.length) {
      const line = lines[i];
      const leading = line.length - line.trimStart().length;
      if (!line.trim()) {
        // a blank line continues the item only if indented content follows
        const next = lines[i + 1];
        if (next !== undefined && next.trim() && next.length - next.trimStart().length >= indent) {
          body.push("");
          i++;
          continue;
        }
        break;
      }
      if (leading >= Math.min(indent, 2) && leading > 0) {
        body.push(line.slice(Math.min(leading, indent)));
        i++;
        continue;
      }
      if (ITEM.test(line) || startsBlock(line)) break;
      body.push(line.trim()); // a lazy continuation of the item's paragraph
      i++;
    }
    const item = document.createElement("li");
    const inner = document.createDocumentFragment();
    blocks(body, inner, depth + 1);
    // an item's first paragraph is its text itself (a tight list)
    if (inner.firstChild?.nodeName === "P") {
      const first = inner.firstChild;
      first.remove();
      item.append(...first.childNodes);
    }
    item.append(inner);
    node.append(item);
    // a blank line between items keeps the list going
    if (i < lines.length && !lines[i].trim() && lines[i + 1] !== undefined && ITEM.test(lines[i + 1])) {
      const next = ITEM.exec(lines[i + 1]);
      if (/\d/.test(next[2]) === ordered) i++;
    }
  }
  parent.append(node);
  return i;
}

/** Inline Markdown of `text` appended to `parent`. */
function inline(text, parent, depth) {
  new Inline(text, depth).into(parent);
}

class Inline {
  constructor(text, depth, shared = null) {
    this.text = text;
    this.depth = depth;
    // caches about positions in `text`, shared by the nested spans of one text
    this.shared = shared || {
      unclosed: new Map(), // delimiter run → a position after which it has no closer
      noEmphasis: new Map(), // delimiter run → a position after which no span can close
      brackets: null, // "[" position → its "]" position
    };
    this.unclosed = this.shared.unclosed;
    this.noEmphasis = this.shared.noEmphasis;
  }

  nested() {
    return new Inline(this.text, this.depth + 1, this.shared);
  }

  /** The matching "]" of the "[" at `i` (-1 if none), from one pass over the text. */
  closingBracket(i) {
    if (this.shared.brackets === null) {
      const brackets = new Map();
      const open = [];
      for (let j = 0; j < this.text.length; j++) {
        const c = this.text[j];
        if (c === "\\") j++;
        else if (c === "[") open.push(j);
        else if (c === "]" && open.length) brackets.set(open.pop(), j);
      }
      this.shared.brackets = brackets;
    }
    return this.shared.brackets.get(i) ?? -1;
  }

  into(parent, from = 0, to = this.text.length) {
    const text = this.text;
    let plain = "";
    const flush = () => {
      if (plain) parent.append(plain);
      plain = "";
    };
    let i = from;
    while (i < to) {
      const c = text[i];
      if (c === "\\" && i + 1 < to && PUNCTUATION.includes(text[i + 1])) {
        plain += text[i + 1];
        i += 2;
        continue;
      }
      if (c === "`") {
        const run = runLength(text, i, "`", to);
        const close = this.findRun(i + run, to, "`", run);
        if (close >= 0) {
          flush();
          let code = text.slice(i + run, close).replace(/\n/g, " ");
          if (code.length > 2 && code.startsWith(" ") && code.endsWith(" ")) code = code.slice(1, -1);
          parent.append(el("code", code));
          i = close + run;
          continue;
        }
        plain += text.slice(i, i + run);
        i += run;
        continue;
      }
      if (c === "[" && this.depth < MAX_DEPTH) {
        const link = this.link(i, to);
        if (link) {
          flush();
          parent.append(link.node);
          i = link.end;
          continue;
        }
      }
      if (c === "h" && (i === from || !/[\w/]/.test(text[i - 1]))) {
        const url = /^https?:\/\/[^\s<>"'`]+/.exec(text.slice(i, Math.min(to, i + 2048)));
        if (url) {
          const href = url[0].replace(/[.,;:!?)\]]+$/, "");
          if (href.length > 8 && linkAllowed(href)) {
            flush();
            parent.append(anchor(href, href));
            i += href.length;
            continue;
          }
        }
      }
      if ((c === "*" || c === "_" || c === "~") && this.depth < MAX_DEPTH) {
        const span = this.emphasis(i, to);
        if (span) {
          flush();
          parent.append(span.node);
          i = span.end;
          continue;
        }
        const run = runLength(text, i, c, to);
        plain += text.slice(i, i + run);
        i += run;
        continue;
      }
      plain += c;
      i++;
    }
    flush();
  }

  /** The index of the next run of exactly `length` `char`s in [from, to), or -1. */
  findRun(from, to, char, length) {
    const key = `${char}${length}`;
    const hopeless = this.unclosed.get(key);
    if (hopeless !== undefined && hopeless <= from) return -1;
    let i = this.text.indexOf(char, from);
    while (i >= 0 && i < to) {
      const run = runLength(this.text, i, char, to);
      if (run === length) return i;
      i = this.text.indexOf(char, i + run);
    }
    if (to === this.text.length) this.unclosed.set(key, Math.min(from, hopeless ?? from));
    return -1;
  }

  emphasis(i, to) {
    const text = this.text;
    const c = text[i];
    const run = runLength(text, i, c, to);
    if (c === "~" && run !== 2) return null;
    const width = c === "~" ? 2 : Math.min(run, 2);
    if (run > 3) return null;
    const after = text[i + run];
    if (after === undefined || /\s/.test(after)) return null; // not left-flanking
    if (c === "_" && i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1])) return null; // intra-word
    const use = run === 3 ? 2 : width;
    const key = `${c}${use}`;
    const hopeless = this.noEmphasis.get(key);
    if (hopeless !== undefined && hopeless <= i + use) return null;
    let search = i + use;
    for (;;) {
      const close = this.findRun(search, to, c, use);
      if (close < 0) {
        if (to === text.length) this.noEmphasis.set(key, Math.min(i + use, hopeless ?? i + use));
        return null;
      }
      const before = text[close - 1];
      const next = text[close + use];
      const rightFlanking = before !== undefined && !/\s/.test(before);
      const wordAfter = c === "_" && next !== undefined && /[\p{L}\p{N}]/u.test(next);
      if (close > i + use && rightFlanking && !wordAfter) {
        const node = document.createElement(c === "~" ? "del" : use === 2 ? "strong" : "em");
        this.nested().into(node, i + use, close);
        return { node, end: close + use };
      }
      search = close + use;
    }
  }

  link(i, to) {
    const text = this.text;
    const close = this.closingBracket(i);
    if (close < 0 || close >= to) return null;
    if (text[close + 1] !== "(") return null;
    const target = /^\(\s*<?([^\s<>()]*)>?(?:\s+"[^"]*")?\s*\)/.exec(text.slice(close + 1, Math.min(to, close + 2100)));
    if (!target) return null;
    const href = target[1];
    const end = close + 1 + target[0].length;
    if (!linkAllowed(href)) {
      // not a link we allow: its text only, the URL dropped
      const span = document.createElement("span");
      this.nested().into(span, i + 1, close);
      return { node: span, end };
    }
    const node = anchor(href, "");
    node.textContent = "";
    this.nested().into(node, i + 1, close);
    if (!node.textContent) node.textContent = href;
    return { node, end };
  }
}

function anchor(href, label) {
  const a = document.createElement("a");
  a.setAttribute("href", new URL(href).href);
  a.setAttribute("target", "_blank");
  a.setAttribute("rel", "noopener noreferrer");
  a.textContent = label;
  return a;
}

function runLength(text, i, char, to) {
  let j = i;
  while (j < to && text[j] === char) j++;
  return j - i;
}
