// Chat panes side by side (`#/chat?s={ns}/{name}&s=…`), all over the one shared WebSocket.

import { h, replace } from "./dom.js";
import { ChatPane } from "./chat.js";

const MAX_PANES = 6;

export function renderChatPage(main, { sessions }) {
  const unique = [...new Map(sessions.map((s) => [`${s.namespace}/${s.name}`, s])).values()].slice(0, MAX_PANES);
  const panes = unique.map(({ namespace, name }) => new ChatPane(namespace, name));
  replace(main,
    h("h1", {}, panes.length === 1 ? `Chat with ${unique[0].namespace}/${unique[0].name}` : "Chats side by side"),
    panes.length
      ? h("div", { class: "chat-panes" }, panes.map((pane) => pane.element))
      : h("p", {}, "No session chosen: pick some in ", h("a", { href: "#/" }, "the list"), "."),
    sessions.length > MAX_PANES ? h("p", { class: "muted" }, `Showing the first ${MAX_PANES} sessions.`) : null);
  for (const pane of panes) pane.start();
  return () => {
    for (const pane of panes) pane.dispose();
  };
}
