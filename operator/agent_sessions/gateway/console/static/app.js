// The console (docs/console.md): sign-in, the account bar and the router.
//
// Routes live in `location.hash`: `#/` the list, `#/sessions/{ns}/{name}` a session page,
// `#/chat?s={ns}/{name}&s=…` chat panes side by side. Each page is a function that fills `main`
// and returns what to call when the user leaves it (streams closed, panes unsubscribed).

import { ApiError, UNAUTHORIZED_EVENT, api, token } from "./api.js";
import { h, replace } from "./dom.js";
import { renderChatPage } from "./chat_page.js";
import { renderList } from "./list.js";
import { renderSession } from "./session.js";

const main = document.getElementById("app");
const account = document.getElementById("account");
let leave = null;
let user = null;

/** Who the token belongs to (`GET /v1/whoami`), or an ApiError (401 for a bad token). */
async function whoami(value) {
  try {
    return await api("/v1/whoami", { token: value });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    // a gateway without /v1/whoami: any authenticated call tells whether the token is good
    await api("/v1/providers", { token: value });
    return { user: null, groups: [] };
  }
}

function showAccount() {
  if (!user) {
    account.replaceChildren();
    return;
  }
  replace(account,
    h("span", { class: "who" }, "Signed in as ", h("strong", { id: "whoami" }, user.user || "(unknown user)")),
    h("button", { id: "signout", type: "button", on: { click: signOut } }, "Sign out"));
}

function signOut() {
  token.clear();
  user = null;
  route();
}

function renderSignIn(message = "") {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", "aria-describedby": "token-help" });
  const error = h("p", { id: "signin-error", role: "alert", class: "error" }, message);
  const submit = h("button", { id: "signin-submit", type: "submit" }, "Sign in");
  const form = h("form", { id: "signin", class: "signin", "aria-labelledby": "signin-title", novalidate: true },
    h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"),
    h("label", { for: "token" }, "Bearer token"),
    input,
    h("p", { id: "token-help", class: "help" },
      "A Kubernetes token, e.g. what ", h("code", {}, "kubectl create token <service-account>"),
      " prints. It is kept in this tab only (sessionStorage) and sent to the gateway as a header."),
    submit,
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.textContent = "Enter a token.";
      input.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    try {
      user = await whoami(value);
      token.set(value);
      input.value = "";
      route();
    } catch (failure) {
      error.textContent = failure.status === 401
        ? "The token was not accepted (401): check that it is current and meant for this cluster."
        : `Could not sign in: ${failure.message}`;
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  document.title = "Sign in — Agent sessions";
  input.focus();
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?", 2);
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  if (parts[0] === "sessions" && parts.length === 3) return { page: "session", namespace: parts[1], name: parts[2] };
  if (parts[0] === "chat") {
    const sessions = params.getAll("s").map((s) => s.split("/")).filter((p) => p.length === 2 && p[0] && p[1]);
    return { page: "chat", sessions: sessions.map(([namespace, name]) => ({ namespace, name })) };
  }
  return { page: "list", namespace: params.get("namespace") };
}

async function route() {
  leave?.();
  leave = null;
  if (!token.get()) {
    user = null;
    showAccount();
    renderSignIn();
    return;
  }
  if (!user) {
    try {
      user = await whoami(token.get());
    } catch (error) {
      if (error.status === 401) {
        token.clear();
        showAccount();
        renderSignIn("Your token is no longer accepted: sign in again.");
        return;
      }
      user = { user: null, groups: [] }; // the gateway is unreachable: the pages say so themselves
    }
  }
  showAccount();
  const where = parseRoute();
  main.replaceChildren();
  if (where.page === "session") leave = renderSession(main, where);
  else if (where.page === "chat") leave = renderChatPage(main, where);
  else leave = renderList(main, where);
  const heading = main.querySelector("h1");
  document.title = `${heading?.textContent || "Sessions"} — Agent sessions`;
  if (heading && document.activeElement === document.body) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

window.addEventListener(UNAUTHORIZED_EVENT, () => {
  user = null;
  leave?.();
  leave = null;
  showAccount();
  renderSignIn("Your token is no longer accepted: sign in again.");
});
window.addEventListener("hashchange", route);
route();
