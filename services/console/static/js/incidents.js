// Incidents: the live list, filtered by service, team, priority and state, updated as the audit log commits.
import {api, stream} from "./api.js";
import {countdown, field, fill, h, priority, select, state, time} from "./dom.js";

const FILTERS = ["service", "team", "priority", "state"];

export async function incidentsPage(view, params) {
  const options = await api("/v1/console/options");
  const chosen = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || ""]));
  if (!params.has("state")) chosen.state = "open";
  const controls = {
    service: select("service", [["", "All services"], ...options.services], chosen.service),
    team: select("team", [["", "All teams"], ...options.teams], chosen.team),
    priority: select("priority", [["", "All priorities"], ...options.priorities], chosen.priority),
    state: select("state", [["", "All states"], ...options.states], chosen.state),
  };
  const labels = {service: "Service", team: "Team", priority: "Priority", state: "State"};
  const live = h("span", {class: "live", id: "live", "data-state": "connecting", role: "status"}, "Connecting…");
  const count = h("p", {class: "muted", id: "incident-count", "aria-live": "polite"});
  const body = h("tbody", {id: "incident-rows"});
  const problem = h("div", {id: "list-problem"});
  fill(
    view,
    h("div", {class: "row"}, h("h1", {}, "Incidents"), live),
    h("form", {class: "card filters", role: "search", "aria-label": "Filter incidents", onsubmit: (e) => e.preventDefault()},
      FILTERS.map((f) => field(`filter-${f}`, labels[f], controls[f])[0])),
    problem,
    count,
    h("div", {class: "card table-wrap"},
      h("table", {class: "cards", "aria-describedby": "incident-count"},
        h("caption", {class: "sr-only"}, "Incidents, newest first"),
        h("thead", {}, h("tr", {}, ["Incident", "Service", "Priority", "State", "Level", "Teams", "Next escalation", "Opened"].map((t) => h("th", {scope: "col"}, t)))),
        body)),
  );

  const rows = new Map(); // incident_id -> view
  let skew = 0;

  function render() {
    const items = [...rows.values()].sort((a, b) => (b.opened_at || "").localeCompare(a.opened_at || ""));
    fill(body, items.map(row));
    count.textContent = `${items.length} incident${items.length === 1 ? "" : "s"} (open ones, and others opened in the last 7 days)`;
    if (!items.length) body.append(h("tr", {}, h("td", {colspan: 8, class: "muted"}, "No incident matches.")));
  }

  function row(inc) {
    const next = inc.next_escalation
      ? h("span", {}, `${inc.next_escalation.kind === "escalate" ? `L${inc.next_escalation.level}` : inc.next_escalation.kind.replace("_", " ")} `, countdown(inc.next_escalation.at, skew))
      : "—";
    return h("tr", {dataset: {incidentId: inc.incident_id, state: inc.state}},
      h("td", {"data-label": "Incident"}, h("a", {href: `#/incidents/${inc.incident_id}`}, inc.summary || inc.dedup_key),
        h("div", {class: "muted mono"}, inc.dedup_key)),
      h("td", {"data-label": "Service"}, inc.service),
      h("td", {"data-label": "Priority"}, priority(inc.priority)),
      h("td", {"data-label": "State"}, state(inc.state)),
      h("td", {"data-label": "Level"}, inc.level ? `L${inc.level}${inc.level_name ? ` ${inc.level_name}` : ""}` : "—"),
      h("td", {"data-label": "Teams"}, inc.teams.join(", ") || "—"),
      h("td", {"data-label": "Next escalation"}, next),
      h("td", {"data-label": "Opened"}, time(inc.opened_at)),
    );
  }

  let feed = null;
  function connect() {
    if (feed) feed.stop();
    const filters = Object.fromEntries(FILTERS.map((f) => [f, controls[f].value]));
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    if (/^#\/incidents(\?|$)/.test(location.hash || "#/incidents")) {  // still the list's address
      history.replaceState(null, "", `#/incidents${query.toString() ? `?${query}` : ""}`);
    }
    feed = stream("/v1/console/stream", filters, (name, data) => {
      if (data.now) skew = new Date(data.now).getTime() - Date.now();
      if (name === "snapshot") {
        rows.clear();
        for (const inc of data.items) rows.set(inc.incident_id, inc);
      } else if (name === "upsert") {
        for (const inc of data.items) rows.set(inc.incident_id, inc);
      } else if (name === "remove") {
        for (const id of data.ids) rows.delete(id);
      } else if (name === "problem") {
        fill(problem, h("div", {class: "banner err", role: "alert"}, `${data.title}: ${data.detail || ""}`));
        return;
      }
      fill(problem);
      render();
    }, (status, why) => {
      live.dataset.state = status;
      live.textContent = status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Disconnected";
      if (why && status === "down") fill(problem, h("div", {class: "banner err", role: "alert"}, why));
    });
  }
  for (const f of FILTERS) controls[f].addEventListener("change", connect);
  connect();
  return {cleanup() { if (feed) feed.stop(); }};
}
