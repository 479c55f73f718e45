// The page: sign in with an API token (kept in sessionStorage), then the runs list, and a
// run's page at #/runs/<id>. The list stays loaded and live underneath a run's page.

import { token } from "./api.js";
import { h } from "./dom.js";
import { Live } from "./live.js";
import { RunView } from "./run.js";
import { RunsView } from "./runs.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOut = document.getElementById("signout");
const badge = document.getElementById("live");
const STATES = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", off: "" };
const live = new Live((state) => {
  badge.dataset.state = state;
  badge.textContent = STATES[state];
});
let runs = null;
let detail = null;

function reset() {
  detail?.destroy();
  runs?.destroy();
  detail = runs = null;
  live.stop();
  who.textContent = "";
  signOut.hidden = true;
}

function signIn(message) {
  reset();
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true,
    placeholder: "rql_…", "aria-label": "API token" });
  const submit = (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    start();
  };
  main.replaceChildren(h("form", { class: "signin", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste your API token. It is kept in this tab only (sessionStorage) and sent as ",
      h("code", {}, "Authorization: Bearer"), ". ", h("code", {}, "runql demo"), " prints demo tokens."),
    message ? h("p", { class: "notice error", role: "alert" }, message) : null,
    input, h("button", { type: "submit" }, "Sign in")));
  input.focus();
}

function refused(error) {
  token.clear();
  signIn(`The server refused this token: ${error.message}`);
}

function failed(error) {
  if (error.code === "UNAUTHENTICATED") return refused(error);
  main.replaceChildren(h("div", { class: "notice error", role: "alert" }, error.message, " ",
    h("button", { type: "button", onclick: start }, "Try again")));
}

async function start() {
  reset();
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  live.start(token.get());
  runs = new RunsView(live, { onAuthError: refused });
  try {
    await runs.load({ withProjects: true });
  } catch (error) {
    return failed(error);
  }
  who.textContent = runs.me;
  signOut.hidden = false;
  route();
}

function route() {
  if (!runs?.me) return;
  detail?.destroy();
  detail = null;
  const match = location.hash.match(/^#\/runs\/([^/]+)$/);
  if (!match) return main.replaceChildren(runs.root);
  detail = new RunView(live, decodeURIComponent(match[1]), {
    cursor: () => runs.cursor,
    relist: () => runs.load().then(() => runs.cursor),
    onAuthError: refused,
    onDeleted: () => { location.hash = "#/"; },
  });
  main.replaceChildren(detail.root);
  detail.load().catch(failed);
}

window.addEventListener("hashchange", route);
signOut.addEventListener("click", () => {
  token.clear();
  signIn();
});
if (token.get()) start();
else signIn();
