// Small DOM helpers: element building (never innerHTML with data), time and duration formatting.

/** Build an element: h("a", {href: "#"}, "text", child). Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") el.style.cssText = value; // CSSOM, which the page's CSP allows
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control: returns [wrapper, control]. */
export function field(id, label, control) {
  control.id = id;
  return [h("div", {class: "fieldbox"}, h("label", {for: id}, label), control), control];
}

/** A select with options [[value, text], ...] or plain values. */
export function select(name, options, value = "") {
  const el = h("select", {name});
  for (const opt of options) {
    const [v, text] = Array.isArray(opt) ? opt : [opt, opt];
    el.append(h("option", {value: v, selected: v === value}, text));
  }
  return el;
}

/** "2h 5m", "45s", "3d 4h" for a number of seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const sign = seconds < 0 ? "-" : "";
  let s = Math.round(Math.abs(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (d) parts.push(`${d}d`);
  if (hh) parts.push(`${hh}h`);
  if (m && !d) parts.push(`${m}m`);
  if (!d && !hh && (s || !parts.length)) parts.push(`${s}s`);
  return sign + parts.join(" ");
}

/** A local, readable time for an ISO instant. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"});
}

/** A <time> element with the ISO value and a readable text. */
export function time(iso) {
  return iso ? h("time", {datetime: iso}, when(iso)) : "—";
}

/** A countdown element updated every second by `tickCountdowns`. */
export function countdown(iso, skewMs = 0) {
  return h("span", {class: "clock", dataset: {deadline: iso, skew: String(skewMs)}}, countdownText(iso, skewMs));
}

function countdownText(iso, skewMs) {
  const left = (new Date(iso).getTime() - (Date.now() + skewMs)) / 1000;
  return left >= 0 ? `in ${duration(left)}` : `${duration(-left)} ago`;
}

/** Refresh every countdown on the page. */
export function tickCountdowns() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    el.textContent = countdownText(el.dataset.deadline, Number(el.dataset.skew || 0));
  }
}

/** A priority badge. */
export function priority(p) {
  return p ? h("span", {class: `badge pri-${p}`}, p) : "—";
}

/** A state badge. */
export function state(s) {
  return h("span", {class: `badge st-${s}`}, s);
}

/** Show a short message in the status area (read by screen readers). */
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.textContent = ""; }, 6000);
}
