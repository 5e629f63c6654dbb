// Policies: each service's policy as a readable ladder, and a simulator running `policy simulate`.
import {api, ApiError} from "./api.js";
import {duration, fill, h} from "./dom.js";
import {SIM_LEGEND, simulationChart} from "./charts.js";

const EXAMPLE = (service) => `# Timed commands on a virtual clock; the same script as \`escalation policy simulate\`.
start: 2026-11-27T22:00:00Z
watch: 2h
events:
  - at: +0m
    action: trigger
    service: ${service}
    dedup_key: disk-full
    summary: Disk 95% full on db1
    severity: critical
  - at: +40m
    action: acknowledge
    service: ${service}
    dedup_key: disk-full
    actor: kim
`;

function ladder(policy) {
  return h("section", {class: "card", "aria-labelledby": `pol-${policy.id}`, dataset: {policy: policy.id}},
    h("h3", {id: `pol-${policy.id}`}, policy.name, policy.name !== policy.id ? h("span", {class: "muted"}, ` (${policy.id})`) : null),
    h("ol", {class: "ladder"}, policy.levels.map((l) => h("li", {class: l.kind},
      h("strong", {}, `L${l.level} ${l.name || ""}`), " ",
      h("span", {class: "muted"}, `${l.kind}, ${l.level === 1 && !l.delay_seconds ? "at once" : `after ${duration(l.delay_seconds)}${l.business_time ? " of business time" : ""}`} (t+${duration(l.after_seconds)})${l.round_robin ? ", round robin" : ""}`),
      h("div", {}, "→ ", l.targets.map((t) => `${t.label} (${t.type})`).join(", "))))),
    h("p", {class: "muted"}, [
      policy.repeat ? `Repeats ${policy.repeat === "forever" ? "forever" : `${policy.repeat}×`} after ${duration(policy.repeat_delay_seconds)}.` : "No repeat.",
      policy.ack_timeout_seconds ? ` Acknowledged but unresolved for ${duration(policy.ack_timeout_seconds)}: escalates again.` : "",
      policy.rules.length ? ` Rules: ${policy.rules.map((r) => r.name).join(", ")}.` : "",
    ].join("")),
    Object.keys(policy.sla).length ? h("div", {class: "table-wrap"}, h("table", {},
      h("caption", {class: "sr-only"}, `SLA of ${policy.id}`),
      h("thead", {}, h("tr", {}, ["SLA", "Ack", "Resolve"].map((t) => h("th", {scope: "col"}, t)))),
      h("tbody", {}, Object.entries(policy.sla).map(([p, t]) => h("tr", {}, h("td", {}, p), h("td", {}, duration(t.acknowledge_seconds)), h("td", {}, duration(t.resolve_seconds))))))) : null);
}

// The service whose ladder has the most levels makes the most telling example.
function exampleService(data) {
  const levels = Object.fromEntries(data.policies.map((p) => [p.id, p.levels.length]));
  const best = [...data.services].sort((a, b) => (levels[b.policy] || 0) - (levels[a.policy] || 0))[0];
  return best ? best.id : "checkout-api";
}

export async function policiesPage(view) {
  const data = await api("/v1/console/policies");
  const byService = h("div", {class: "table-wrap"}, h("table", {},
    h("caption", {class: "sr-only"}, "Services and their policies"),
    h("thead", {}, h("tr", {}, ["Service", "Policy", "Default priority", "Calendar"].map((t) => h("th", {scope: "col"}, t)))),
    h("tbody", {}, data.services.map((s) => h("tr", {}, h("td", {}, s.id), h("td", {}, h("a", {href: `#pol-${s.policy}`, onclick: (e) => { e.preventDefault(); document.getElementById(`pol-${s.policy}`).scrollIntoView(); }}, s.policy)), h("td", {}, s.default_priority || "—"), h("td", {}, s.calendar || "—"))))));
  const script = h("textarea", {id: "sim-script", rows: "16", spellcheck: "false", "aria-describedby": "sim-help sim-error"}, EXAMPLE(exampleService(data)));
  const error = h("p", {id: "sim-error", class: "error", role: "alert"});
  const result = h("div", {id: "sim-result", "aria-live": "polite"});
  const run = h("button", {type: "submit", id: "sim-run"}, "Run simulation");
  fill(view, h("h1", {}, "Policies"),
    h("section", {class: "card", "aria-labelledby": "svc-title"}, h("h2", {id: "svc-title"}, "Services"), byService,
      data.default_policy ? h("p", {class: "muted"}, `Services not listed use ${data.default_policy}.`) : null),
    h("h2", {}, "Ladders"),
    h("div", {class: "grid2"}, data.policies.map(ladder)),
    h("section", {class: "card", "aria-labelledby": "sim-title"},
      h("h2", {id: "sim-title"}, "Simulator"),
      h("p", {id: "sim-help", class: "muted"}, "Runs the script against the policies above on a virtual clock (nobody is paged)."),
      h("form", {onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        run.disabled = true;
        try {
          const out = await api("/v1/console/simulate", {method: "POST", body: {script: script.value}});
          showResult(result, out);
        } catch (err) {
          error.textContent = err instanceof ApiError ? err.explain() : String(err);
          fill(result);
        } finally {
          run.disabled = false;
        }
      }}, h("label", {for: "sim-script"}, "Script (YAML)"), script, error, run),
      result));
}

function showResult(box, out) {
  fill(box,
    h("p", {}, `${out.incidents} incident(s), ${out.pages} page(s), ${out.sla_breaches} SLA breach(es) from ${new Date(out.start).toLocaleString()}.`),
    h("ul", {class: "legend", "aria-label": "Legend"}, SIM_LEGEND.map(([type, colour]) => h("li", {}, h("span", {class: "sw", style: `background:${colour}`}), type))),
    simulationChart(out),
    h("div", {class: "table-wrap"}, h("table", {id: "sim-events"},
      h("caption", {class: "sr-only"}, "Simulated events"),
      h("thead", {}, h("tr", {}, ["At", "Incident", "Event", "Detail"].map((t) => h("th", {scope: "col"}, t)))),
      h("tbody", {}, out.events.map((e) => h("tr", {}, h("td", {}, `+${duration(e.offset_seconds)}`), h("td", {class: "mono"}, e.incident_key), h("td", {}, e.type), h("td", {}, e.detail)))))));
}
