// Failovers as timelines, derived from the event log alone (the events'
// millisecond times): a server's first ServerSuspect or ServerDead opens
// one; every instance rescheduled away from it, started again, replaced
// or found unplaceable, every tenant whose serving copy changed from it,
// and plans held meanwhile are marks on it; the server's ServerOnline
// closes it.
"use strict";

// TIMELINE_REASONS are the events that may change a failover's timeline.
const TIMELINE_REASONS = new Set(["ServerSuspect", "ServerDead", "ServerOnline", "FailoverStarted", "FailoverBlocked", "Rescheduled",
  "Unplaceable", "Replaced", "Spawned", "Started", "Fenced", "ServingChanged", "Held"]);

const MARKS = {
  suspect: { color: "#fbbf24", label: "suspect" },
  dead: { color: "#f87171", label: "declared dead" },
  online: { color: "#34d399", label: "back online" },
  fenced: { color: "#c084fc", label: "stale copy stopped" },
  failover: { color: "#fb923c", label: "failover started" },
  blocked: { color: "#b91c1c", label: "failover blocked" },
  held: { color: "#fbbf24", label: "plan held" },
  placed: { color: "#60a5fa", label: "placed elsewhere" },
  started: { color: "#2dd4bf", label: "started" },
  replaced: { color: "#34d399", label: "running again" },
  unplaceable: { color: "#fb923c", label: "unplaceable" },
  served: { color: "#34d399", label: "served again" },
  unserved: { color: "#f87171", label: "nothing serves" },
};

function refOf(obj) {
  const i = obj.indexOf("/");
  return i < 0 ? [obj, ""] : [obj.slice(0, i), obj.slice(i + 1)];
}

// row is an episode's lane for one object, made on first use.
function row(ep, key, label) {
  let r = ep.rows.get(key);
  if (!r) { r = { key, label, marks: [] }; ep.rows.set(key, r); }
  return r;
}

function mark(ep, key, label, kind, e, text) {
  const at = e.t;
  const r = row(ep, key, label);
  const m = { kind, at, text: text || e.message, id: e.id };
  // A tenant served by another copy with nothing serving it in between
  // (a warm spare took over) had no gap to be "served again" after.
  if (kind === "served" && !r.marks.some((x) => x.kind === "unserved")) m.gapless = true;
  r.marks.push(m);
  ep.end = Math.max(ep.end, at);
}

// markLabel is what a mark says it is.
function markLabel(m) { return m.gapless ? "served by another copy" : (MARKS[m.kind] || {}).label; }

// failoverEpisodes reads events into episodes, newest last. Events are
// taken in the order of their times, not their ids: the controller's
// health events are written a flush after the placements they caused.
// A server that was only suspect for a while, then answered again, had
// no failover: it is left out.
function failoverEpisodes(events) {
  const eps = [], open = new Map(), byInstance = new Map();
  events = events.slice().sort((a, b) => a.t - b.t || a.id - b.id);
  const openFor = (server) => open.get(server);
  const latestOpen = (at) => { let best = null; for (const ep of open.values()) if (!best || ep.start > best.start) best = ep; return best && at - best.end < 120000 ? best : null; };
  for (const e of events) {
    const [kind, id] = refOf(e.object);
    const at = e.t;
    if (kind === "server") serverEvent(e, id, at, eps, open);
    else if (kind === "instance") instanceEvent(e, id, openFor, byInstance, latestOpen, at);
    else if (kind === "tenant" && e.reason === "ServingChanged") {
      const was = /\(was ([^)]*)\)/.exec(e.message);
      let ep = null;
      if (was) for (const c of was[1].split(",")) { const s = c.trim().split("@")[1]; if (s && openFor(s)) ep = openFor(s); }
      if (!ep) ep = [...open.values()].find((x) => x.tenants.has(id));
      if (ep) {
        const none = /now served by nothing/.test(e.message);
        mark(ep, "tenant:" + id, "tenant " + id, none ? "unserved" : "served", e);
        ep.tenants.add(id);
      }
    } else if (kind === "hold" && e.reason === "Held") {
      const ep = latestOpen(at);
      if (ep) mark(ep, "server:" + ep.server, "server " + ep.server, "held", e);
    }
  }
  return eps.filter((ep) => !ep.closed || ep.dead || ep.rows.size > 1);
}

function serverEvent(e, id, at, eps, open) {
  let ep = open.get(id);
  const key = "server:" + id, label = "server " + id;
  switch (e.reason) {
    case "ServerSuspect":
    case "ServerDead":
      if (!ep) {
        ep = { id: "fo-" + e.id, server: id, start: at, end: at, rows: new Map(), tenants: new Set(), closed: false };
        open.set(id, ep);
        eps.push(ep);
      }
      if (!ep.dead || e.reason === "ServerSuspect") mark(ep, key, label, e.reason === "ServerDead" ? "dead" : "suspect", e);
      if (e.reason === "ServerDead") ep.dead = ep.dead || at;
      break;
    case "ServerOnline":
      if (ep) { mark(ep, key, label, "online", e); ep.closed = true; open.delete(id); }
      break;
    case "FailoverStarted":
      if (ep) mark(ep, key, label, "failover", e);
      break;
    case "FailoverBlocked":
      if (ep) mark(ep, key, label, "blocked", e);
      break;
  }
}

function instanceEvent(e, key, openFor, byInstance, latestOpen, at) {
  const label = "instance " + key;
  const tenant = key.split(":")[0];
  let m;
  if (e.reason === "Rescheduled" && (m = /^(\S+) -> (\S+):/.exec(e.message))) {
    const ep = openFor(m[1]);
    if (!ep) return;
    byInstance.set(key, ep);
    ep.tenants.add(tenant);
    mark(ep, "instance:" + key, label, "placed", e, "placed on " + m[2] + ": " + e.message.slice(m[0].length).trim());
  } else if (e.reason === "Unplaceable" && (m = /^server (\S+) is dead/.exec(e.message))) {
    const ep = openFor(m[1]);
    if (!ep) return;
    byInstance.set(key, ep);
    ep.tenants.add(tenant);
    mark(ep, "instance:" + key, label, "unplaceable", e);
  } else if (e.reason === "Replaced") {
    const ep = byInstance.get(key) || ((m = /after (\S+) was declared dead/.exec(e.message)) && openFor(m[1]));
    if (ep) mark(ep, "instance:" + key, label, "replaced", e);
  } else if (e.reason === "Spawned" || e.reason === "Started") {
    const ep = byInstance.get(key);
    if (ep && at - ep.end < 120000) mark(ep, "instance:" + key, label, "started", e);
  } else if (e.reason === "Fenced") {
    const ep = byInstance.get(key) || latestOpen(at);
    if (ep) mark(ep, "instance:" + key, label, "fenced", e);
  }
}

function fmtDur(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  return Math.floor(ms / 60000) + " m " + Math.round((ms % 60000) / 1000) + " s";
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const k of kids.flat()) if (k) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}

// drawTimeline draws the episode chosen (state.foIndex; default the
// latest) as lanes on a time axis, each mark with its time after the
// first fault seen.
function drawTimeline() {
  const eps = state.episodes || [];
  const box = $("timeline");
  $("fo-count").textContent = eps.length ? eps.length + " failover" + (eps.length === 1 ? "" : "s") + " in the event log" : "";
  if (!eps.length) {
    box.replaceChildren(h("p", { class: "empty", text: "No failover in the event log yet. When a server stops answering, what slum saw and did is drawn here, to the millisecond." }));
    $("fo-prev").disabled = $("fo-next").disabled = true;
    return;
  }
  const i = state.foIndex === null || state.foIndex >= eps.length ? eps.length - 1 : state.foIndex;
  $("fo-prev").disabled = i === 0;
  $("fo-next").disabled = i === eps.length - 1;
  const ep = eps[i];
  const rows = [...ep.rows.values()].sort((a, b) => rowOrder(a) - rowOrder(b) || a.marks[0].at - b.marks[0].at);
  box.replaceChildren(timelineHead(ep, i, eps.length), timelineSVG(ep, rows), timelineList(ep, rows));
}

function rowOrder(r) { return r.key.startsWith("server:") ? 0 : r.key.startsWith("instance:") ? 1 : 2; }

function timelineHead(ep, i, n) {
  const served = [...ep.rows.values()].filter((r) => r.key.startsWith("tenant:")).map((r) => r.marks.find((m) => m.kind === "served")).filter(Boolean);
  const replaced = [...ep.rows.values()].map((r) => r.marks.find((m) => m.kind === "replaced")).filter(Boolean);
  const bits = [h("b", { text: "Server " + ep.server }), " · began " + fmtTimeMs(ep.start)];
  if (ep.dead) bits.push(" · declared dead after ", h("b", { text: fmtDur(ep.dead - ep.start) }));
  if (replaced.length) bits.push(" · last copy running again after ", h("b", { text: fmtDur(Math.max(...replaced.map((m) => m.at)) - ep.start) }));
  if (served.length) bits.push(served.every((m) => m.gapless) ? " · every tenant served by another copy after " : " · every tenant served again after ", h("b", { text: fmtDur(Math.max(...served.map((m) => m.at)) - ep.start) }));
  bits.push(ep.closed ? " · server back online" : " · still open");
  return h("div", { class: "fo-head", "data-failover": ep.server, "data-open": ep.closed ? "no" : "yes" }, h("span", { class: "muted", text: (i + 1) + " of " + n + " · " }), bits);
}

function timelineSVG(ep, rows) {
  const W = 1000, lane = 26, top = 24, left = 190;
  const H = top + rows.length * lane + 8;
  const span = Math.max(ep.end - ep.start, 100) * 1.15;
  const x = (t) => left + ((t - ep.start) / span) * (W - left - 20);
  const svg = s("svg", { viewBox: "0 0 " + W + " " + H, class: "tl-svg", role: "img", "aria-label": "failover of " + ep.server + " on a time axis" });
  for (let k = 0; k <= 5; k++) {
    const t = ep.start + (span * k) / 5;
    // The last label ends at its line, inside the chart, not across its edge.
    svg.append(s("line", { x1: x(t), x2: x(t), y1: top - 6, y2: H, class: "tl-grid" }), s("text", { x: x(t), y: 12, class: "tl-tick", "text-anchor": k === 5 ? "end" : "middle" }, "+" + fmtDur(t - ep.start)));
  }
  rows.forEach((r, j) => {
    const y = top + j * lane + lane / 2;
    svg.append(s("text", { x: left - 10, y: y + 4, class: "tl-label", "text-anchor": "end" }, r.label.length > 28 ? r.label.slice(0, 27) + "…" : r.label));
    const xs = r.marks.map((m) => x(m.at));
    svg.append(s("line", { x1: Math.min(...xs), x2: Math.max(...xs), y1: y, y2: y, class: "tl-span" }));
    r.marks.forEach((m, k) => {
      const c = (MARKS[m.kind] || {}).color || "#a5b4fc";
      const g = s("g", { class: "tl-mark", "data-mark": m.kind },
        s("title", {}, fmtTimeMs(m.at) + " · " + markLabel(m) + " · " + m.text),
        s("circle", { cx: x(m.at), cy: y, r: 6, fill: c }));
      if (k === r.marks.length - 1 || x(r.marks[k + 1].at) - x(m.at) > 60) g.append(s("text", { x: x(m.at) + 9, y: y - 7, class: "tl-dur" }, "+" + fmtDur(m.at - ep.start)));
      svg.append(g);
    });
  });
  return h("div", { class: "tl-wrap" }, svg);
}

// timelineList says the same in words, for every mark, with its time.
function timelineList(ep, rows) {
  const all = [];
  for (const r of rows) for (const m of r.marks) all.push({ r, m });
  all.sort((a, b) => a.m.at - b.m.at || a.m.id - b.m.id);
  return h("details", { class: "tl-list" }, h("summary", { text: "Every step, in order (" + all.length + ")" }),
    h("ol", {}, all.map(({ r, m }) => h("li", {},
      h("time", { text: fmtTimeMs(m.at) }), h("span", { class: "tl-plus", text: "+" + fmtDur(m.at - ep.start) }),
      h("i", { class: "dot-" + m.kind }), h("b", { text: r.label }), " " + markLabel(m) + " — " + m.text))));
}
