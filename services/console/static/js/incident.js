// One incident: state, level, next escalation countdown, SLA clocks, timeline and the operator actions.
import {abilities, api, ApiError, session, stream} from "./api.js";

const ACTOR_KEY = "escalation.console.actor";
import {countdown, duration, field, fill, h, priority, select, state, time, toast} from "./dom.js";
import {timelineList} from "./timeline.js";

export async function incidentPage(view, id) {
  const options = await api("/v1/console/options");
  const heading = h("h1", {}, "Incident");
  const summary = h("section", {class: "card", "aria-labelledby": "facts-title"});
  const clocksBox = h("section", {class: "card", "aria-labelledby": "clocks-title"});
  const actionsBox = h("section", {class: "card", "aria-labelledby": "actions-title"});
  const timelineBox = h("section", {class: "card", "aria-labelledby": "timeline-title"});
  const status = h("p", {id: "action-status", role: "status", "aria-live": "polite"});
  fill(view, h("p", {}, h("a", {href: "#/incidents"}, "← Incidents")), heading,
    h("div", {class: "grid2"}, summary, clocksBox), actionsBox, timelineBox);
  let incident = null;
  const deliveries = h("input", {type: "checkbox", id: "show-deliveries"});
  let entries = [];
  deliveries.addEventListener("change", () => renderTimeline());

  function renderTimeline() {
    const shown = deliveries.checked ? entries : entries.filter((e) => !e.type.startsWith("notification."));
    const hidden = entries.length - shown.length;
    fill(timelineBox, h("h2", {id: "timeline-title"}, "Timeline"),
      h("div", {class: "row"}, deliveries, h("label", {for: "show-deliveries"}, `Show delivery attempts${hidden ? ` (${hidden} hidden)` : ""}`)),
      timelineList(shown));
  }

  async function load() {
    const focused = document.activeElement && document.activeElement.id;
    const [detail, timeline] = await Promise.all([
      api(`/v1/console/incidents/${id}`),
      api(`/v1/console/incidents/${id}/timeline`).catch((err) => (err instanceof ApiError && err.status === 404 ? {entries: []} : Promise.reject(err))),
    ]);
    incident = detail.incident;
    const skew = new Date(detail.now).getTime() - Date.now();
    heading.textContent = incident.summary || incident.dedup_key;
    fill(summary, h("h2", {id: "facts-title"}, "Facts"),
      h("dl", {class: "facts"},
        h("dt", {}, "State"), h("dd", {id: "incident-state"}, state(incident.state)),
        h("dt", {}, "Priority"), h("dd", {}, priority(incident.priority), ` ${incident.severity}`),
        h("dt", {}, "Service"), h("dd", {}, incident.service),
        h("dt", {}, "Dedup key"), h("dd", {class: "mono"}, incident.dedup_key),
        h("dt", {}, "Current level"), h("dd", {id: "incident-level"}, incident.level ? `L${incident.level}${incident.level_name ? ` ${incident.level_name}` : ""} (cycle ${incident.cycle})` : "not yet reached"),
        h("dt", {}, "Teams"), h("dd", {}, incident.teams.join(", ") || "—"),
        h("dt", {}, "Policy"), h("dd", {}, incident.policy_id, incident.rule ? ` (rule ${incident.rule})` : ""),
        h("dt", {}, "Opened"), h("dd", {}, time(incident.opened_at)),
        h("dt", {}, "Acknowledged"), h("dd", {}, incident.acknowledged_at ? [time(incident.acknowledged_at), ` by ${incident.acknowledged_by || "?"}`] : "—"),
        h("dt", {}, "Resolved"), h("dd", {}, incident.resolved_at ? [time(incident.resolved_at), ` by ${incident.resolved_by || "?"}`] : "—"),
        h("dt", {}, "Triggers"), h("dd", {}, String(incident.triggers)),
        h("dt", {}, "Incident id"), h("dd", {class: "mono"}, incident.incident_id)),
      h("p", {}, h("a", {href: `#/audit?incident=${incident.incident_id}`}, "Open in the audit log")));
    renderClocks(detail.clocks, skew);
    renderActions();
    entries = timeline.entries;
    renderTimeline();
    const again = focused && document.getElementById(focused);
    if (again && !again.disabled) again.focus();
  }

  function renderClocks(clocks, skew) {
    const next = clocks.next_escalation;
    const items = [h("h2", {id: "clocks-title"}, "Clocks")];
    items.push(h("p", {}, h("strong", {}, "Next escalation: "),
      next ? h("span", {id: "next-escalation"}, next.kind === "escalate" ? `level ${next.level} ` : `${next.kind.replace("_", " ")} `, countdown(next.at, skew), " (", time(next.at), ")")
        : h("span", {id: "next-escalation"}, incident.state === "resolved" ? "none: resolved" : incident.exhausted ? "none: the policy is exhausted" : "none pending")));
    if (clocks.snoozed_until) items.push(h("p", {}, "Snoozed until ", time(clocks.snoozed_until), " ", countdown(clocks.snoozed_until, skew)));
    for (const c of clocks.sla) {
      const fraction = c.target_seconds ? Math.min(1, c.elapsed_seconds / c.target_seconds) : 0;
      const label = `SLA ${c.clock}`;
      items.push(h("div", {class: "sla", dataset: {clock: c.clock}},
        h("p", {}, h("strong", {}, `${label}: `), `${duration(c.elapsed_seconds)} of ${duration(c.target_seconds)}`,
          c.stopped ? " — met" : c.breached ? " — breached" : c.paused ? " — paused" : c.breach_at ? [" — breaches ", countdown(c.breach_at, skew)] : ""),
        h("div", {class: `meter${c.breached ? " hot" : ""}`, role: "meter", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(fraction * 100))},
          h("span", {style: `width:${Math.round(fraction * 100)}%`}))));
    }
    if (!clocks.sla.length && incident.state !== "resolved") items.push(h("p", {class: "muted"}, "No SLA applies to this priority."));
    if (clocks.note) items.push(h("p", {class: "banner warn"}, clocks.note));
    fill(clocksBox, ...items);
  }

  function renderActions() {
    const can = abilities();
    const closed = incident.state === "resolved";
    const why = h("p", {id: "action-why", class: "muted"}, !can.act ? can.actWhy : closed ? "The incident is resolved: no action applies." : "");
    const off = !can.act || closed;
    const button = (name, text, extra = {}) => h("button", {type: "button", id: `do-${name}`, disabled: off || extra.disabled, "aria-describedby": "action-why", onclick: extra.onclick || (() => act(name, {}))}, text);
    const [levelBox, level] = field("escalate-level", "To level (optional)", h("input", {type: "number", min: "1", inputmode: "numeric", disabled: off}));
    const [snoozeBox, snooze] = field("snooze-for", "Snooze for", select("snooze", [["900", "15 minutes"], ["1800", "30 minutes"], ["3600", "1 hour"], ["14400", "4 hours"]], "1800"));
    snooze.disabled = off;
    const targets = [["", "Choose…"], ...options.teams.map((t) => [`team:${t}`, `Team ${t}`]), ...options.policies.map((p) => [`policy:${p}`, `Policy ${p}`])];
    const [reassignBox, reassign] = field("reassign-to", "Reassign to", select("reassign", targets));
    reassign.disabled = off;
    const [noteBox, note] = field("note-text", "Note", h("textarea", {rows: "3", maxlength: "10000", disabled: !can.act}));
    // Authentication off: nobody is signed in, so the person says who they are (the intake records it).
    const open = session.me && !session.me.auth;
    const [actorBox, actor] = field("actor-name", "Your name (recorded as who acted; authentication is off)",
      h("input", {type: "text", autocomplete: "name", maxlength: "255", value: sessionStorage.getItem(ACTOR_KEY) || ""}));
    actor.addEventListener("change", () => sessionStorage.setItem(ACTOR_KEY, actor.value.trim()));
    fill(actionsBox, h("h2", {id: "actions-title"}, "Actions"), why, open ? actorBox : null, status,
      h("div", {class: "actions"},
        h("fieldset", {}, h("legend", {}, "Respond"),
          button("acknowledge", "Acknowledge", {disabled: incident.state !== "triggered"}),
          button("resolve", "Resolve")),
        h("fieldset", {}, h("legend", {}, "Escalate now"), levelBox,
          button("escalate", "Escalate now", {onclick: () => act("escalate", level.value ? {to_level: Number(level.value)} : {})})),
        h("fieldset", {}, h("legend", {}, "Snooze"), snoozeBox,
          button("snooze", "Snooze", {disabled: incident.state !== "acknowledged", onclick: () => act("snooze", {duration_seconds: Number(snooze.value)})})),
        h("fieldset", {}, h("legend", {}, "Reassign"), reassignBox,
          button("reassign", "Reassign", {onclick: () => {
            const [kind, name] = reassign.value.split(/:(.*)/s);
            if (!name) { status.textContent = "Choose a team or policy to reassign to."; reassign.focus(); return; }
            act("reassign", {[kind]: name});
          }})),
        h("fieldset", {}, h("legend", {}, "Add note"), noteBox,
          h("button", {type: "button", id: "do-notes", disabled: !can.act, "aria-describedby": "action-why", onclick: () => {
            if (!note.value.trim()) { status.textContent = "Write a note first."; note.focus(); return; }
            act("notes", {text: note.value}).then((ok) => { if (ok) note.value = ""; });
          }}, "Add note"))));
  }

  async function act(action, body) {
    status.textContent = `Sending ${action}…`;
    try {
      const who = sessionStorage.getItem(ACTOR_KEY);
      const sent = session.me && !session.me.auth && who ? {...body, actor: who} : body;
      await api(`/v1/console/incidents/${id}/${action}`, {method: "POST", body: sent});
      status.textContent = `${action} accepted; waiting for the escalator…`;
      toast(`${action} accepted`);
      return true;
    } catch (err) {
      status.textContent = err instanceof ApiError ? err.explain() : String(err);
      return false;
    }
  }

  try {
    await load();
  } catch (err) {
    // A link opened before the incident reached the audit log (it was just triggered): wait for it.
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    heading.textContent = "Incident not recorded yet";
    fill(summary, h("p", {role: "status", id: "incident-waiting"},
      `Incident ${id} is not in the audit log yet; this page shows it as soon as it is recorded.`));
  }
  // Reload when the audit log records anything about this incident.
  let pending = null;
  const feed = stream("/v1/console/stream", {incident_id: id, since: "1970-01-01T00:00:00Z"}, (name, data) => {
    const mine = (data.items || []).some((i) => i.incident_id === id);
    const touched = (name === "snapshot" && (incident || mine)) || (name === "upsert" && mine);
    if (touched && !pending) {
      pending = setTimeout(() => {
        pending = null;
        const keep = status.textContent;
        load().then(() => { if (keep && !keep.startsWith("Sending")) status.textContent = keep.replace("waiting for the escalator…", "recorded."); }).catch(() => {});
      }, 150);
    }
  }, () => {});
  return {cleanup() { feed.stop(); clearTimeout(pending); }};
}
