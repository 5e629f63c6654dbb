// An incident's audit timeline as an ordered list: what happened, when, who did it.
import {h, time} from "./dom.js";

function detail(entry) {
  const p = entry.payload || {};
  switch (entry.type) {
    case "escalation.step_reached":
      return `level ${p.level}${p.level_name ? ` ${p.level_name}` : ""} (${p.kind}, ${p.reason}) → ${(p.targets || []).map((t) => t.name || t.id || t.url || t.type).join(", ")}`;
    case "notification.delivered":
    case "notification.failed":
      return `${p.channel} to ${(p.target && (p.target.name || p.target.id || p.target.url)) || "?"}, attempt ${p.attempt}${p.error ? `: ${p.error}` : ""}`;
    case "incident.opened":
      return `${p.summary} [${p.severity}, ${p.priority}, policy ${p.policy_id}${p.rule ? `, rule ${p.rule}` : ""}]`;
    case "incident.snoozed":
      return `until ${new Date(p.until).toLocaleString()}`;
    case "incident.note_added":
    case "incident.add_note":
      return p.text;
    case "incident.reassigned":
      return `to ${p.team ? `team ${p.team}` : `policy ${p.policy_id}`}`;
    case "sla.warning":
    case "sla.breached":
      return `${p.clock}: ${Math.round(p.fraction * 100)}% of ${Math.round(p.target_seconds / 60)} min (${p.priority})`;
    default:
      return p.summary || p.reason || "";
  }
}

/** The entries as an <ol>, newest last. */
export function timelineList(entries) {
  return h("ol", {class: "timeline", "aria-label": "Timeline"},
    entries.map((e) => h("li", {dataset: {type: e.type, actor: e.actor || ""}},
      h("div", {}, h("span", {class: "type"}, e.type), " ", e.actor ? h("span", {class: "actor"}, `by ${e.actor}`) : null),
      h("div", {class: "muted"}, time(e.occurred_at), ` · ${e.topic}`),
      detail(e) ? h("div", {}, detail(e)) : null)));
}
