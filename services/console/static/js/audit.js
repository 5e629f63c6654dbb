// Audit: chain verification, search, an incident's timeline, exports, and the SLA report with charts.
import {abilities, api, ApiError, download} from "./api.js";
import {duration, field, fill, h, select, time, toast} from "./dom.js";
import {COLOURS, lineChart} from "./charts.js";
import {timelineList} from "./timeline.js";

const explain = (err) => (err instanceof ApiError ? err.explain() : String(err));

export async function auditPage(view, params) {
  const can = abilities();
  if (!can.audit) {
    fill(view, h("h1", {}, "Audit"), h("div", {class: "banner warn", role: "alert"}, can.auditWhy));
    return;
  }
  const options = await api("/v1/console/options");
  const verifyBox = h("div", {id: "verify-status", role: "status", "aria-live": "polite"}, "Verifying…");
  const timelineBox = h("div", {id: "audit-timeline"});
  const results = h("div", {id: "search-results"});
  const exportStatus = h("p", {id: "export-status", role: "status", "aria-live": "polite", class: "muted"});
  const reportBox = h("div", {id: "report"});

  const f = {
    service: select("service", [["", "Any"], ...options.services]),
    team: select("team", [["", "Any"], ...options.teams]),
    priority: select("priority", [["", "Any"], ...options.priorities]),
    actor: h("input", {type: "text", autocomplete: "off"}),
    type: h("input", {type: "text", placeholder: "e.g. incident.acknowledged", autocomplete: "off"}),
    incident_id: h("input", {type: "text", autocomplete: "off", spellcheck: "false", value: params.get("incident") || ""}),
    since: h("input", {type: "datetime-local"}),
    until: h("input", {type: "datetime-local"}),
  };
  const names = {service: "Service", team: "Team", priority: "Priority", actor: "Actor", type: "Type", incident_id: "Incident id", since: "Since", until: "Until"};
  const filters = () => {
    const out = {};
    for (const [k, el] of Object.entries(f)) {
      const v = el.value.trim();
      if (v) out[k] = k === "since" || k === "until" ? new Date(v).toISOString() : v;
    }
    return out;
  };

  async function verify() {
    fill(verifyBox, "Verifying…");
    try {
      const r = await api("/v1/verify");
      fill(verifyBox, h("div", {class: `banner ${r.ok ? "ok" : "err"}`, dataset: {ok: String(r.ok)}},
        h("strong", {}, r.ok ? "Chain verified" : "Verification FAILED"),
        ` — ${r.rows} rows in ${r.chains} chains, ${r.checkpoints} signed checkpoints${r.key_id ? `, key ${r.key_id}` : ""}.`,
        r.problems.length ? h("ul", {}, r.problems.map((p) => h("li", {}, p))) : null,
        r.notes.length ? h("ul", {class: "muted"}, r.notes.map((p) => h("li", {}, p))) : null));
    } catch (err) {
      fill(verifyBox, h("div", {class: "banner err"}, explain(err)));
    }
  }

  let next = null;
  async function search(more = false) {
    if (!more) { next = null; fill(results); }
    try {
      const page = await api("/v1/events", {params: {...filters(), limit: 50, after: more ? next : undefined}});
      next = page.next;
      let body = results.querySelector("tbody");
      if (!body) {
        body = h("tbody");
        fill(results, h("div", {class: "table-wrap"}, h("table", {class: "cards"},
          h("caption", {class: "sr-only"}, "Audit log rows"),
          h("thead", {}, h("tr", {}, ["#", "When", "Type", "Actor", "Service", "Incident"].map((t) => h("th", {scope: "col"}, t)))), body)));
      }
      for (const r of page.items) {
        body.append(h("tr", {},
          h("td", {"data-label": "#"}, String(r.seq)), h("td", {"data-label": "When"}, time(r.occurred_at)),
          h("td", {"data-label": "Type"}, r.type), h("td", {"data-label": "Actor"}, r.actor || "—"),
          h("td", {"data-label": "Service"}, r.service || "—"),
          h("td", {"data-label": "Incident"}, r.incident_id ? h("button", {type: "button", class: "secondary", onclick: () => { f.incident_id.value = r.incident_id; showTimeline(); }}, `Timeline ${r.incident_id.slice(-8)}`) : "—")));
      }
      if (!page.items.length && !more) fill(results, h("p", {class: "muted"}, "Nothing matches."));
      results.querySelector("#more")?.remove();
      if (next) results.append(h("button", {type: "button", id: "more", class: "secondary", onclick: () => search(true)}, "More"));
    } catch (err) {
      fill(results, h("div", {class: "banner err", role: "alert"}, explain(err)));
    }
  }

  async function showTimeline() {
    const id = f.incident_id.value.trim();
    if (!id) { fill(timelineBox, h("p", {class: "muted"}, "Enter an incident id to see its timeline.")); return; }
    try {
      const t = await api(`/v1/incidents/${encodeURIComponent(id)}/timeline`);
      fill(timelineBox, h("h3", {}, "Timeline of ", h("a", {href: `#/incidents/${id}`, class: "mono"}, id)), timelineList(t.entries));
    } catch (err) {
      fill(timelineBox, h("div", {class: "banner err", role: "alert"}, explain(err)));
    }
  }

  async function exportAs(path, name) {
    exportStatus.textContent = `Preparing ${name}…`;
    try {
      const size = await download(path, path.includes("evidence") ? {} : filters(), name);
      exportStatus.textContent = `Downloaded ${name} (${size.toLocaleString()} bytes).`;
      toast(`Downloaded ${name}`);
    } catch (err) {
      exportStatus.textContent = explain(err);
    }
  }

  const reportBy = select("by", [["team", "Team"], ["priority", "Priority"], ["service", "Service"]], "team");
  const bucket = select("bucket", [["day", "Day"], ["week", "Week"], ["hour", "Hour"]], "day");
  const range = select("range", [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"], ["1", "Last 24 hours"]], "30");
  async function report() {
    const until = new Date();
    const since = new Date(until.getTime() - Number(range.value) * 86400000);
    const params = {by: reportBy.value, since: since.toISOString(), until: until.toISOString()};
    try {
      const [over, totals] = await Promise.all([
        api("/v1/reports/series", {params: {...params, bucket: bucket.value}}),
        api("/v1/reports", {params}),
      ]);
      const lines = (key) => over.series.map((s) => ({name: s.group, points: s.points.map((p) => ({x: new Date(p.start), y: p[key]}))}));
      const legend = h("ul", {class: "legend", "aria-label": "Legend"}, over.series.map((s, n) => h("li", {}, h("span", {class: "sw", style: `background:${COLOURS[n % COLOURS.length]}`}), s.group)));
      fill(reportBox,
        over.series.length ? [legend,
          h("div", {class: "grid2"},
            h("figure", {}, h("figcaption", {}, `MTTA per ${over.by} and ${over.bucket}`), lineChart(lines("mtta_seconds"), {label: `Mean time to acknowledge per ${over.by}, by ${over.bucket}`})),
            h("figure", {}, h("figcaption", {}, `MTTR per ${over.by} and ${over.bucket}`), lineChart(lines("mttr_seconds"), {label: `Mean time to resolve per ${over.by}, by ${over.bucket}`})))]
          : h("p", {class: "muted"}, "No incident opened in this range."),
        h("div", {class: "table-wrap"}, h("table", {class: "cards", id: "report-table"},
          h("caption", {}, `Totals per ${totals.by}`),
          h("thead", {}, h("tr", {}, ["Group", "Incidents", "MTTA", "MTTR", "SLA breaches", "Within SLA", "Acknowledged by"].map((t) => h("th", {scope: "col"}, t)))),
          h("tbody", {}, totals.lines.map((l) => h("tr", {},
            h("td", {"data-label": "Group"}, l.group), h("td", {"data-label": "Incidents"}, String(l.incidents)),
            h("td", {"data-label": "MTTA"}, duration(l.mtta_seconds)), h("td", {"data-label": "MTTR"}, duration(l.mttr_seconds)),
            h("td", {"data-label": "SLA breaches"}, String(l.sla_breaches)),
            h("td", {"data-label": "Within SLA"}, l.sla_compliance === null ? "—" : `${Math.round(l.sla_compliance * 100)}%`),
            h("td", {"data-label": "Acknowledged by"}, Object.entries(l.acknowledged_by).map(([who, n]) => `${who} (${n})`).join(", ") || "—")))))));
    } catch (err) {
      fill(reportBox, h("div", {class: "banner err", role: "alert"}, explain(err)));
    }
  }
  for (const el of [reportBy, bucket, range]) el.addEventListener("change", report);

  fill(view, h("h1", {}, "Audit"),
    h("section", {class: "card", "aria-labelledby": "verify-title"},
      h("div", {class: "row"}, h("h2", {id: "verify-title"}, "Chain verification"), h("button", {type: "button", class: "secondary", id: "verify-run", onclick: verify}, "Verify now")),
      verifyBox),
    h("section", {class: "card", "aria-labelledby": "search-title"},
      h("h2", {id: "search-title"}, "Search"),
      h("form", {role: "search", "aria-label": "Search the audit log", onsubmit: (e) => { e.preventDefault(); search(); if (f.incident_id.value.trim()) showTimeline(); }},
        h("div", {class: "filters"}, Object.entries(f).map(([k, el]) => field(`audit-${k}`, names[k], el)[0])),
        h("div", {class: "row", style: "margin-top:.6rem"},
          h("button", {type: "submit", id: "search-run"}, "Search"),
          h("button", {type: "button", class: "secondary", id: "timeline-run", onclick: showTimeline}, "Show incident timeline"))),
      timelineBox, results),
    h("section", {class: "card", "aria-labelledby": "export-title"},
      h("h2", {id: "export-title"}, "Export"),
      h("p", {class: "muted"}, "JSONL and CSV follow the search filters; the evidence pack holds every row, the checkpoints and the public key, and `escalation audit verify --pack FILE` checks it offline."),
      h("div", {class: "row"},
        h("button", {type: "button", id: "export-jsonl", onclick: () => exportAs("/v1/export.jsonl", "audit-export.jsonl")}, "Export JSONL"),
        h("button", {type: "button", id: "export-csv", onclick: () => exportAs("/v1/export.csv", "audit-export.csv")}, "Export CSV"),
        h("button", {type: "button", id: "export-evidence", onclick: () => exportAs("/v1/evidence.jsonl", "evidence-pack.jsonl")}, "Evidence pack")),
      exportStatus),
    h("section", {class: "card", "aria-labelledby": "report-title"},
      h("h2", {id: "report-title"}, "SLA report"),
      h("div", {class: "filters"}, field("report-by", "Group by", reportBy)[0], field("report-bucket", "Per", bucket)[0], field("report-range", "Range", range)[0]),
      reportBox));
  verify();
  report();
  if (f.incident_id.value) showTimeline();
}
