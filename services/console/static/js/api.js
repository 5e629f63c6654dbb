// The console's only way to the server: fetch with the bearer token, problem+json errors, live streams.

const KEY = "escalation.console.token";

export const session = {
  token: sessionStorage.getItem(KEY) || "",
  me: null, // {name, role, auth}
  set(token) { this.token = token; if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY); },
};

/** An HTTP error as the problem+json body states it. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  /** Words for a person: what went wrong, and for 401/403 what to do about it. */
  explain() {
    if (this.status === 401) return `Not signed in or the token is unknown (${this.problem.title}). Sign in again.`;
    if (this.status === 403) return `Your token may not do this: ${this.problem.title}.`;
    const fields = (this.problem.errors || []).map((e) => e.field).filter(Boolean);
    return fields.length ? `${this.message} (field: ${fields.join(", ")})` : this.message;
  }
}

function headers(extra = {}) {
  const out = {Accept: "application/json", ...extra};
  if (session.token) out.Authorization = `Bearer ${session.token}`;
  return out;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {title: `HTTP ${response.status} ${response.statusText}`};
  }
}

/** GET or POST JSON; throws ApiError on a non-2xx answer. */
export async function api(path, {method = "GET", body, params} = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
  const init = {method, headers: headers(body !== undefined ? {"Content-Type": "application/json"} : {})};
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(url, init);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.status === 204 ? null : response.json();
}

/** Download a file from an authenticated endpoint (a blob and a link: no token in any URL). */
export async function download(path, params, filename) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
  const response = await fetch(url, {headers: headers({Accept: "*/*"})});
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return blob.size;
}

/**
 * Follow a server-sent event stream with fetch (EventSource cannot send the Authorization header),
 * reconnecting with backoff until `stop()`. onEvent(name, data); onState("live" | "connecting" | "down", why).
 */
export function stream(path, params, onEvent, onState) {
  let controller = null;
  let stopped = false;
  let delay = 500;
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      onState("connecting");
      try {
        const response = await fetch(url, {headers: headers({Accept: "text/event-stream"}), signal: controller.signal});
        if (!response.ok) {
          const err = new ApiError(response.status, await problemOf(response));
          onState("down", err.explain());
          if (response.status === 401 || response.status === 403) return;
        } else {
          delay = 500;
          onState("live");
          await read(response.body.getReader());
          if (!stopped) onState("connecting", "stream ended; reconnecting");
        }
      } catch (err) {
        if (stopped) return;
        onState("down", `connection lost (${err.message}); reconnecting`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  async function read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  }

  run();
  return {stop() { stopped = true; if (controller) controller.abort(); }};
}

/** What the signed-in role may do: {act, audit} with reasons when not. */
export function abilities() {
  const role = session.me ? session.me.role : null;
  const open = session.me && !session.me.auth;
  const act = open || role === "responder" || role === "admin";
  const audit = open || role === "auditor" || role === "admin";
  return {
    act,
    actWhy: act ? "" : `Your role (${role}) may read but not act: acknowledging, resolving and the other actions need the responder role.`,
    audit,
    auditWhy: audit ? "" : `Your role (${role}) may not read the audit log: search, exports, verification and reports need the auditor role.`,
  };
}
