// Inline SVG charts drawn from data: a line chart of series over time, and a simulation timeline.
import {duration} from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
export const COLOURS = ["var(--s1)", "var(--s2)", "var(--s3)", "var(--s4)", "var(--s5)", "var(--s6)"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * A line chart: series [{name, points: [{x: Date, y: number|null}]}]; gaps where y is null.
 * `label` describes it for screen readers (role=img with a <title>).
 */
export function lineChart(series, {label, yFormat = duration, width = 640, height = 240} = {}) {
  const pad = {l: 56, r: 12, t: 12, b: 28};
  const xs = series.flatMap((x) => x.points.map((p) => p.x.getTime()));
  const ys = series.flatMap((x) => x.points.map((p) => p.y)).filter((y) => y !== null && y !== undefined);
  const svg = s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label}, s("title", {}, label));
  if (!ys.length) {
    svg.append(s("text", {x: width / 2, y: height / 2, "text-anchor": "middle"}, "No acknowledged or resolved incident in this range"));
    return svg;
  }
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const yMax = Math.max(1, ...ys);
  const X = (t) => pad.l + ((t - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v) => height - pad.b - (v / yMax) * (height - pad.t - pad.b);
  for (let i = 0; i <= 4; i += 1) {
    const v = (yMax * i) / 4;
    svg.append(s("line", {class: "grid", x1: pad.l, x2: width - pad.r, y1: Y(v), y2: Y(v)}),
      s("text", {x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end"}, yFormat(v)));
  }
  svg.append(s("line", {class: "axis", x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b}));
  const ticks = Math.min(6, new Set(xs).size);
  for (let i = 0; i < ticks; i += 1) {
    const t = x0 + ((x1 - x0) * i) / Math.max(1, ticks - 1);
    const anchor = i === 0 ? "start" : i === ticks - 1 ? "end" : "middle";
    svg.append(s("text", {x: X(t), y: height - 8, "text-anchor": anchor}, new Date(t).toLocaleDateString(undefined, {month: "short", day: "numeric"})));
  }
  series.forEach((line, n) => {
    const colour = COLOURS[n % COLOURS.length];
    let d = "";
    let pen = false;
    for (const p of line.points) {
      if (p.y === null || p.y === undefined) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${X(p.x.getTime()).toFixed(1)},${Y(p.y).toFixed(1)} `;
      pen = true;
    }
    if (d) svg.append(s("path", {d, fill: "none", stroke: colour, "stroke-width": 2}));
    for (const p of line.points) {
      if (p.y === null || p.y === undefined) continue;
      svg.append(s("circle", {cx: X(p.x.getTime()), cy: Y(p.y), r: 3, fill: colour}, s("title", {}, `${line.name}: ${yFormat(p.y)} on ${p.x.toLocaleDateString()}`)));
    }
  });
  return svg;
}

const KIND_COLOUR = {
  "escalation.step_reached": "var(--s1)",
  "incident.opened": "var(--s6)",
  "incident.acknowledged": "var(--s5)",
  "incident.resolved": "var(--s3)",
  "sla.warning": "var(--s2)",
  "sla.breached": "var(--p1)",
};

/** A simulation timeline: one lane per incident key, a mark per event at its offset from the start. */
export function simulationChart(result, {width = 760} = {}) {
  const keys = [...new Set(result.events.map((e) => e.incident_key))];
  const lane = 44, pad = {l: 12, r: 12, t: 20, b: 30};
  const height = pad.t + pad.b + lane * Math.max(1, keys.length);
  const end = Math.max(1, result.end_seconds, ...result.events.map((e) => e.offset_seconds));
  const X = (sec) => pad.l + (sec / end) * (width - pad.l - pad.r);
  const label = `Simulated timeline of ${keys.length} incident(s) over ${duration(end)}: ${result.pages} pages, ${result.sla_breaches} SLA breaches`;
  const svg = s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label}, s("title", {}, label));
  for (let i = 0; i <= 6; i += 1) {
    const sec = (end * i) / 6;
    svg.append(s("line", {class: "grid", x1: X(sec), x2: X(sec), y1: pad.t - 6, y2: height - pad.b}),
      s("text", {x: X(sec), y: height - 10, "text-anchor": i === 0 ? "start" : i === 6 ? "end" : "middle"}, `+${duration(sec)}`));
  }
  keys.forEach((key, n) => {
    const y = pad.t + lane * n + lane / 2;
    svg.append(s("line", {class: "axis", x1: pad.l, x2: width - pad.r, y1: y, y2: y}),
      s("text", {x: pad.l, y: y - 12}, key));
    for (const e of result.events.filter((x) => x.incident_key === key)) {
      const colour = KIND_COLOUR[e.type] || "var(--muted)";
      const mark = e.type === "escalation.step_reached"
        ? s("g", {}, s("circle", {cx: X(e.offset_seconds), cy: y, r: 9, fill: colour}), s("text", {x: X(e.offset_seconds), y: y + 4, "text-anchor": "middle", class: "on-mark"}, `L${e.level}`))
        : s("rect", {x: X(e.offset_seconds) - 4, y: y - 4, width: 8, height: 8, fill: colour, transform: `rotate(45 ${X(e.offset_seconds)} ${y})`});
      mark.append(s("title", {}, `+${duration(e.offset_seconds)} ${e.type} ${e.detail}`));
      svg.append(mark);
    }
  });
  return svg;
}

export const SIM_LEGEND = Object.entries(KIND_COLOUR);
