// On-call: who is on call now for each schedule, until when, and the next hand-offs.
import {api} from "./api.js";
import {countdown, fill, h, time} from "./dom.js";

function people(list) {
  return list.length ? list.map((p) => (p.name && p.name !== p.id ? `${p.name} (${p.id})` : p.id)).join(", ") : "nobody";
}

export async function oncallPage(view) {
  const data = await api("/v1/console/oncall");
  const skew = new Date(data.now).getTime() - Date.now();
  fill(view, h("h1", {}, "On-call"),
    data.schedules.length ? null : h("p", {class: "muted"}, "No schedule in the directory."),
    h("div", {class: "grid2"}, data.schedules.map((s) => h("section", {class: "card", "aria-labelledby": `sch-${s.id}`, dataset: {schedule: s.id}},
      h("h2", {id: `sch-${s.id}`}, s.name),
      h("p", {class: "muted"}, `${s.time_zone}${s.teams.length ? ` · teams: ${s.teams.join(", ")}` : ""}`),
      h("p", {}, h("strong", {}, "On call now: "), h("span", {class: "oncall-now"}, people(s.on_call))),
      h("p", {}, h("strong", {}, "Hands off: "), s.until ? [time(s.until), " (", countdown(s.until, skew), ")"] : "no change within 14 days"),
      s.next.length ? h("table", {},
        h("caption", {class: "sr-only"}, `Next hand-offs of ${s.name}`),
        h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "From"), h("th", {scope: "col"}, "Until"), h("th", {scope: "col"}, "On call"))),
        h("tbody", {}, s.next.map((n) => h("tr", {}, h("td", {}, time(n.start)), h("td", {}, time(n.end)), h("td", {}, people(n.on_call)))))) : null))));
}
