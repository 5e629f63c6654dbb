// The console's shell: theme, sign-in, the hash router and the pages it shows.
import {api, ApiError, session} from "./api.js";
import {fill, h, tickCountdowns} from "./dom.js";
import {incidentsPage} from "./incidents.js";
import {incidentPage} from "./incident.js";
import {oncallPage} from "./oncall.js";
import {policiesPage} from "./policies.js";
import {auditPage} from "./audit.js";

const THEME_KEY = "escalation.console.theme";
const view = document.getElementById("view");
let current = null; // the page shown: {cleanup?()}
let navigation = 0; // how many routes began
let shown = 0; // the navigation whose page is on screen

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const button = document.getElementById("theme");
  button.setAttribute("aria-pressed", String(theme === "dark")); // a toggle: its label stays, its state changes
}

function initialTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === "dark" || saved === "light") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

applyTheme(initialTheme());
document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", (e) => {
  if (!localStorage.getItem(THEME_KEY)) applyTheme(e.matches ? "dark" : "light");
});

const ROUTES = [
  [/^#\/incidents\/([0-9a-f-]{36})$/, (m) => incidentPage(view, m[1])],
  [/^#\/incidents(?:\?(.*))?$/, (m) => incidentsPage(view, new URLSearchParams(m[1] || ""))],
  [/^#\/oncall$/, () => oncallPage(view)],
  [/^#\/policies$/, () => policiesPage(view)],
  [/^#\/audit(?:\?(.*))?$/, (m) => auditPage(view, new URLSearchParams(m[1] || ""))],
];

async function route() {
  const mine = ++navigation;
  if (current && current.cleanup) current.cleanup();
  current = null;
  const hash = location.hash || "#/incidents";
  const section = hash.split(/[/?]/)[1] || "incidents";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const match = ROUTES.map(([re, page]) => [hash.match(re), page]).find(([m]) => m);
  if (!match) {
    fill(view, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", {href: "#/incidents"}, "Incidents")));
    shown = mine;
    return;
  }
  let page = null;
  let failure = null;
  try {
    page = (await match[1](match[0])) || null;
  } catch (err) {
    failure = err;
  }
  if (mine !== navigation) {
    // Another page was asked for while this one loaded (a link followed, a test's goto right after
    // sign-in): this one is dropped. If the later page is already on screen, this one drew over it.
    if (page && page.cleanup) page.cleanup();
    if (shown === navigation) route();
    return;
  }
  shown = mine;
  current = page;
  if (failure) {
    const err = failure;
    fill(view, h("div", {class: "banner err", role: "alert"}, err instanceof ApiError ? err.explain() : String(err)));
  }
  const heading = view.querySelector("h1");
  if (heading && document.activeElement === document.body) heading.setAttribute("tabindex", "-1");
}

function showWho() {
  const who = document.getElementById("who");
  const me = session.me;
  who.textContent = me.auth ? `${me.name} (${me.role})` : "authentication off";
  document.getElementById("logout").hidden = !me.auth;
}

async function signIn(token) {
  session.set(token);
  session.me = await api("/v1/console/me");
  showWho();
}

function showLogin(message = "") {
  document.getElementById("login").hidden = false;
  view.hidden = true;
  document.getElementById("login-error").textContent = message;
  document.getElementById("token").focus();
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  try {
    await signIn(input.value.trim());
    input.value = "";
    document.getElementById("login").hidden = true;
    view.hidden = false;
    route();
  } catch (err) {
    session.set("");
    showLogin(err instanceof ApiError ? err.explain() : String(err));
  }
});

document.getElementById("logout").addEventListener("click", () => {
  session.set("");
  session.me = null;
  if (current && current.cleanup) current.cleanup();
  current = null;
  fill(view);
  document.getElementById("who").textContent = "";
  document.getElementById("logout").hidden = true;
  showLogin();
});

window.addEventListener("hashchange", () => { if (session.me) route(); });
setInterval(tickCountdowns, 1000);

(async function start() {
  try {
    await signIn(session.token);
    route();
  } catch (err) {
    session.set("");
    showLogin(session.token && err instanceof ApiError ? err.explain() : "");
  }
})();
