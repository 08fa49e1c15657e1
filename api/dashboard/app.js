// slum's dashboard: the fleet at a glance, live. It signs in with an API
// token (kept in this tab's sessionStorage only), takes the whole fleet
// from the watch's first message (a reset) and every change after it, and
// redraws what changed. No framework, no build step: the API serves this
// file as it is.
"use strict";

const TOKEN_KEY = "slum.token";
const PHASES = ["running", "idle", "pending", "stopped", "failed", "unknown", "down", "unplaceable"];

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  who: null,
  objects: { server: new Map(), tenant: new Map(), instance: new Map(), hold: new Map(), route: new Map(), settings: new Map() },
  events: [],
  lastId: "",
  revision: 0,
  statusRevision: 0,
  abort: null,
  flash: new Set(), // keys to animate on the next draw
  seenChips: new Map(), // instance key -> server it was last drawn on
  firstDraw: true,
  resets: 0, // whole-fleet messages taken: one per (re)connection
  history: [], // the event log as far back as the page has it, oldest first
  episodes: [], // failovers read from history (timeline.js)
  foIndex: null, // the failover shown; null: the latest
  filter: "", // the search box
  perf: { signIn: 0, firstRender: 0, batches: [], shown: [] }, // ms, measured here
};
window.slumPerf = state.perf;

// ---- small DOM helpers: text only, never HTML from data
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else if (k === "title") el.title = v;
    else if (k === "onclick") el.addEventListener("click", v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);

function fmtMB(mb) {
  return mb >= 1024 ? (mb / 1024).toFixed(mb % 1024 ? 1 : 0) + " GB" : mb + " MB";
}
function pad(n, w) { return String(n).padStart(w || 2, "0"); }
// Times in the viewer's zone, to the millisecond where order matters.
function fmtTimeMs(t) {
  const d = new Date(t);
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
}
function fmtClock(t) {
  const d = new Date(t);
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}
function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return Math.round(s) + "s";
  if (s < 3600) return Math.round(s / 60) + "m";
  return Math.round(s / 3600) + "h";
}

// ---- API
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + state.token }, body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty */ }
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

// ---- sign in and out
function showLogin(msg) {
  if (state.abort) state.abort.abort();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
  $("token").focus();
}

async function signIn(token) {
  state.perf.signIn = performance.now();
  state.token = token.trim();
  try {
    state.who = await api("GET", "/v1/whoami");
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(e.status === 401 ? "That token is unknown or revoked." : e.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("login").hidden = true;
  $("app").hidden = false;
  const who = $("who");
  who.replaceChildren(state.who.no_auth ? h("b", { text: "no auth" }) :
    h("span", {}, "token ", h("b", { text: state.who.name || "#" + state.who.id }), " · " + state.who.role));
  drawLegend();
  watch();
  if (state.who.role !== "router") {
    loadHistory();
    pollTraffic();
    pollRollouts();
  }
  route();
}

// loadHistory reads the event log further back than the watch's reset
// does, for the failover timelines.
async function loadHistory() {
  try {
    addHistory(await api("GET", "/v1/events/recent?last=3000"));
    scheduleDraw();
  } catch (_) { /* the watch's events still show */ }
}

// addHistory adds events the page did not have; the failovers are read
// again only when one of them could change one.
function addHistory(evs) {
  if (!evs || !evs.length) return;
  const last = state.history.length ? state.history[state.history.length - 1].id : 0;
  let older = false, relevant = false;
  for (const e of evs) {
    if (e.id <= last) { older = true; continue; }
    e.t = Date.parse(e.at);
    state.history.push(e);
    // A start matters only while a failover is under way.
    relevant = relevant || TIMELINE_REASONS.has(e.reason) && (e.object.startsWith("server/") || e.reason === "Held" ||
      state.episodes.some((ep) => !ep.closed && e.t - ep.end < 120000));
  }
  if (older) { // an earlier read, merged in
    const have = new Set(state.history.map((e) => e.id));
    for (const e of evs) if (!have.has(e.id)) { e.t = Date.parse(e.at); state.history.push(e); relevant = true; }
    state.history.sort((a, b) => a.id - b.id);
  }
  if (state.history.length > 5000) state.history.splice(0, state.history.length - 5000);
  if (relevant || older) state.episodes = failoverEpisodes(state.history);
}

// ---- the watch: server-sent events read from a fetch, so the token
// travels in a header (EventSource cannot send one) and never in a URL.
async function watch() {
  let pause = 500;
  for (;;) {
    const ctl = new AbortController();
    state.abort = ctl;
    try {
      const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
      if (state.lastId) headers["Last-Event-ID"] = state.lastId;
      const kinds = state.who && state.who.role === "router" ? "?kinds=route" : "";
      const res = await fetch("/v1/watch" + kinds, { headers, signal: ctl.signal, cache: "no-store" });
      if (res.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin("The token stopped working (revoked?). Sign in again."); return; }
      if (!res.ok) throw new Error("watch: " + res.status);
      setLive("live");
      pause = 500;
      await readSSE(res.body, handle, (id) => { state.lastId = id; });
      throw new Error("stream ended");
    } catch (e) {
      if (ctl.signal.aborted && $("app").hidden) return;
      setLive("reconnecting");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 8000);
    }
  }
}

// readSSE reads server-sent events from a response body: onMessage(event,
// data parsed as JSON) for each, onID(id) for each id.
async function readSSE(body, onMessage, onID) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let ev = { id: "", event: "", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (ev.id && onID) onID(ev.id);
        if (ev.data.length) {
          let data = null;
          try { data = JSON.parse(ev.data.join("\n")); } catch (_) { data = ev.data.join("\n"); }
          onMessage(ev.event || "message", data);
        }
        ev = { id: "", event: "", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let val = i < 0 ? "" : line.slice(i + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "id") ev.id = val;
      else if (field === "event") ev.event = val;
      else if (field === "data") ev.data.push(val);
    }
  }
}

function put(c) {
  const m = state.objects[c.kind];
  if (!m) return;
  if (c.op === "delete") m.delete(c.id);
  else m.set(c.id, c.object);
}

function handle(name, msg) {
  const t0 = performance.now();
  if (name === "reset") {
    state.resets++;
    document.getElementById("live").dataset.resets = String(state.resets);
    for (const m of Object.values(state.objects)) m.clear();
    for (const c of msg.objects || []) put(c);
    state.events = (msg.events || []).slice().reverse();
    addHistory(msg.events);
  } else if (name === "changes") {
    for (const c of msg.changes || []) {
      const old = state.objects[c.kind] && state.objects[c.kind].get(c.id);
      put(c);
      if (c.kind === "server" && old && c.object && health(old) !== health(c.object)) state.flash.add("server:" + c.id);
      if (c.kind === "tenant" && old && c.object && servingText(old) !== servingText(c.object)) state.flash.add("tenant:" + c.id);
    }
    for (const e of msg.events || []) { state.events.unshift(e); state.flash.add("event:" + e.id); }
    state.events.length = Math.min(state.events.length, 200);
    addHistory(msg.events);
    rolloutEvents(msg.events);
  } else {
    return;
  }
  state.revision = msg.revision;
  state.statusRevision = msg.status_revision;
  // What the next draw shows: the first reset (for the first render's
  // time), or the oldest batch waiting (for how long one takes to show).
  if (name === "reset") state.resetPending = true;
  else if (!state.pendingBatch) state.pendingBatch = { t0, work: 0 };
  if (state.pendingBatch) state.pendingBatch.work += performance.now() - t0;
  scheduleDraw();
}

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; draw(); });
}

function setLive(s) {
  $("live").dataset.state = s;
  $("live-text").textContent = s;
}

// ---- what the objects say
function health(s) { return (s.status && s.status.health) || "unknown"; }
function phaseOf(inst) { return (inst.status && inst.status.phase) || "pending"; }
function servingText(t) { return JSON.stringify((t.status && t.status.serving) || []); }

function servingSets() {
  const serving = new Set(), spare = new Set();
  for (const t of state.objects.tenant.values()) {
    const st = t.status;
    if (!st) continue;
    for (const c of st.serving || []) serving.add(t.id + ":" + c.instance + "@" + c.server);
    for (const c of st.spares || []) spare.add(t.id + ":" + c.instance + "@" + c.server);
  }
  return { serving, spare };
}

// ---- drawing
function draw() {
  const t0 = performance.now();
  const sec = {};
  for (const [name, fn] of [["summary", drawSummary], ["holds", drawHolds], ["traffic", drawFleetTraffic], ["timeline", drawTimeline],
    ["rollouts", drawRollouts], ["servers", drawServers], ["tenants", drawTenants], ["trouble", drawUnplaceable], ["events", drawEvents], ["page", drawTenantPage], ["charts", flushCharts]]) {
    const a = performance.now();
    fn();
    sec[name] = Math.round((performance.now() - a) * 10) / 10;
  }
  state.perf.sections = sec;
  $("footer").textContent = "desired revision " + state.revision + " · status revision " + state.statusRevision +
    " · " + state.objects.route.size + " routes · " + state.history.length + " events kept here";
  state.flash.clear();
  const done = performance.now();
  const b = state.pendingBatch;
  state.pendingBatch = null;
  if (state.resetPending && !state.perf.firstRender && state.perf.signIn) {
    state.perf.firstRender = done - state.perf.signIn;
    state.perf.firstDraw = done - t0;
  } else if (b && !state.resetPending) {
    // work: the page's own time on the batches (reading them, drawing);
    // shown: from the first one's arrival until drawn, waiting for the
    // browser's next frame included.
    state.perf.batches.push(b.work + (done - t0));
    state.perf.shown.push(done - b.t0);
    if (state.perf.batches.length > 200) { state.perf.batches.shift(); state.perf.shown.shift(); }
  }
  state.resetPending = false;
  $("app").dataset.perf = JSON.stringify({ first: Math.round(state.perf.firstRender), lastBatch: Math.round(state.perf.batches[state.perf.batches.length - 1] || 0) });
  state.perf.sections = sec;
  state.firstDraw = false;
}

function stat(n, label, cls) {
  return h("div", { class: "stat " + (cls || "") }, h("b", { text: String(n) }), h("span", { text: label }));
}

function drawSummary() {
  const servers = [...state.objects.server.values()];
  const insts = [...state.objects.instance.values()];
  const online = servers.filter((s) => health(s) === "online").length;
  const dead = servers.filter((s) => health(s) === "dead").length;
  const settled = insts.filter((i) => i.desired_state === "stopped" ? phaseOf(i) === "stopped" : ["running", "idle"].includes(phaseOf(i))).length;
  const trouble = insts.filter((i) => ["failed", "down", "unplaceable"].includes(phaseOf(i))).length;
  const movedAway = insts.filter((i) => i.home_server && i.home_server !== i.server).length;
  const parts = [
    stat(online + "/" + servers.length, "servers online", dead ? "bad" : online === servers.length ? "good" : "warn"),
    stat(settled + "/" + insts.length, "instances as desired", trouble ? "bad" : settled === insts.length ? "good" : "warn"),
    stat(state.objects.tenant.size, "tenants"),
  ];
  if (dead) parts.push(stat(dead, dead === 1 ? "server dead" : "servers dead", "bad"));
  if (movedAway) parts.push(stat(movedAway, "failed over", "warn"));
  if (trouble) parts.push(stat(trouble, "in trouble", "bad"));
  $("summary").replaceChildren(...parts);
}

function drawHolds() {
  const holds = [...state.objects.hold.values()].sort((a, b) => a.id - b.id);
  const admin = state.who && state.who.role === "admin";
  $("holds").replaceChildren(...holds.map((hd) => {
    let actions = [];
    try { actions = JSON.parse(hd.detail || "{}").actions || []; } catch (_) { /* not ours */ }
    const approved = hd.state === "approved";
    const btn = approved ? h("span", { class: "badge", text: "approved · being carried out" }) :
      admin ? h("button", { class: "approve", "data-hold": hd.id, onclick: (e) => approve(hd.id, e.target) }, "Approve once") :
        h("span", { class: "muted small", text: "an admin token can approve it" });
    return h("div", { class: "hold" + (approved ? " approved" : ""), "data-hold-id": hd.id },
      h("div", { class: "icon", text: approved ? "✓" : "!" }),
      h("div", { class: "what" },
        h("b", { text: (approved ? "Approved" : "Held") + " plan " + hd.id + " (" + hd.kind + ")" }), " — " + hd.summary,
        actions.length ? h("div", {}, h("span", { class: "muted small", text: approved ? "What it does:" : "What it would do, once approved:" }),
          h("ul", {}, actions.slice(0, 12).map((a) => h("li", { text: a })),
            actions.length > 12 ? h("li", { text: "… and " + (actions.length - 12) + " more (slum approve " + hd.id + " --show)" }) : null)) : null),
      btn);
  }));
}

async function approve(id, btn) {
  btn.disabled = true;
  btn.textContent = "Approving…";
  try {
    await api("POST", "/v1/holds/" + id + "/approve", { by: "dashboard" });
  } catch (e) {
    btn.disabled = false;
    btn.textContent = "Approve once";
    alert("Not approved: " + e.message);
  }
}

const HEALTHS = [["online", "answers its probes"], ["suspect", "missed a probe: takes no new instances"], ["dead", "missed dead_after probes: its copies run elsewhere"],
  ["unauthorized", "refuses slum's token"], ["unknown", "not probed yet"]];
const PHASE_TEXT = { running: "running", idle: "idle (on demand, asleep)", pending: "being placed or started", stopped: "stopped",
  failed: "failed to start", unknown: "not seen yet", down: "its server is dead", unplaceable: "no server can take it" };

function drawLegend() {
  const chip = (cls, text, title) => h("span", { title }, h("i", { class: "sw " + cls }), text);
  $("legend").replaceChildren(
    h("div", { class: "legend-row" }, h("b", { text: "Instances" }), PHASES.map((p) => chip("p-" + p, PHASE_TEXT[p]))),
    h("div", { class: "legend-row" }, h("b", { text: "Servers" }), HEALTHS.map(([k, t]) => chip("hl-" + k, k, t))),
    h("div", { class: "legend-row" }, h("b", { text: "Copies" }),
      chip("c-serving", "serving (the router sends its traffic here)"), chip("c-spare", "warm spare"), chip("c-moved", "failed over, away from home")),
    h("div", { class: "legend-row" }, h("b", { text: "Charts" }), chartKey(["rps", "err", "p50", "p99"])),
    h("div", { class: "legend-row" }, h("b", { text: "Timeline" }),
      Object.entries(MARKS).map(([k, m]) => chip("dot-" + k, m.label))),
    h("div", { class: "legend-row" }, h("b", { text: "Restarts" }),
      ["pending", "restarting", "done", "failed", "skipped"].map((k) => chip("ro-step " + k, STEP_TEXT[k]))));
}

function chartKey(keys) {
  const names = { rps: "requests/s", err: "error rate (0–100%)", p50: "p50 latency", p99: "p99 latency" };
  return h("span", { class: "chart-key" }, keys.map((k) => h("span", {}, h("i", { class: "ln ln-" + k }), names[k])));
}

function byServerMap() {
  const on = new Map(), from = new Map();
  for (const i of state.objects.instance.values()) {
    if (!on.has(i.server)) on.set(i.server, []);
    on.get(i.server).push(i);
    if (i.home_server && i.home_server !== i.server) {
      if (!from.has(i.home_server)) from.set(i.home_server, []);
      from.get(i.home_server).push(i);
    }
  }
  return { on, from };
}

// A card is made again only when what it shows changed: with a thousand
// tenants, a batch that touches one server leaves the others alone.
const cardCache = new Map(); // server id -> { sig, el }

function drawServers() {
  const servers = [...state.objects.server.values()].sort((a, b) => a.id.localeCompare(b.id));
  const { on, from } = byServerMap();
  const sets = servingSets();
  const box = $("servers");
  if (!servers.length) {
    cardCache.clear();
    box.replaceChildren(h("p", { class: "empty", text: "No servers yet: slum server add, or slum apply -f fleet.yaml." }));
    return;
  }
  const els = servers.map((s) => {
    const insts = on.get(s.id) || [], away = from.get(s.id) || [];
    const sig = cardSig(s, insts, away, sets);
    const hit = cardCache.get(s.id);
    if (hit && hit.sig === sig && !state.flash.has("server:" + s.id)) return hit.el;
    const el = serverCard(s, insts.sort(chipOrder), away, sets);
    cardCache.set(s.id, { sig, el });
    return el;
  });
  for (const id of cardCache.keys()) if (!state.objects.server.has(id)) cardCache.delete(id);
  const cur = [...box.children];
  if (cur.length === els.length && cur.every((c, i) => c === els[i] || c.dataset.server === els[i].dataset.server)) {
    cur.forEach((c, i) => { if (c !== els[i]) c.replaceWith(els[i]); });
  } else {
    box.replaceChildren(...els);
  }
}

// cardSig is everything a server's card shows, as one string.
function cardSig(s, insts, away, sets) {
  const parts = [JSON.stringify(s), JSON.stringify((traffic.servers.get(s.id) || {}).now || null), traffic.end, ago(s.status && s.status.health_since)];
  for (const i of insts) {
    const ref = i.tenant + ":" + i.id + "@" + s.id;
    parts.push(i.key, i.home_server, phaseOf(i), i.desired_state, i.memory_mb, (i.status && i.status.message) || "", sets.serving.has(ref), sets.spare.has(ref));
  }
  for (const i of away) parts.push(i.key, i.server, phaseOf(i));
  return parts.join("|");
}

// chipOrder puts what needs looking at first: trouble, then failed over,
// then by key.
function chipOrder(a, b) {
  const rank = (i) => (["failed", "down", "unplaceable"].includes(phaseOf(i)) ? 0 : phaseOf(i) !== "running" ? 1 : i.home_server && i.home_server !== i.server ? 2 : 3);
  return rank(a) - rank(b) || a.key.localeCompare(b.key);
}

const CHIPS_SHOWN = 40;

function chipOf(i, s, sets) {
  const ref = i.tenant + ":" + i.id + "@" + s.id;
  const isServing = sets.serving.has(ref), isSpare = sets.spare.has(ref);
  const moved = i.home_server && i.home_server !== i.server;
  const prev = state.seenChips.get(i.key);
  const isNew = !state.firstDraw && prev !== s.id;
  state.seenChips.set(i.key, s.id);
  const tags = [];
  if (isServing) tags.push("serving");
  else if (isSpare) tags.push("spare");
  if (moved) tags.push("↪ from " + i.home_server);
  if (i.desired_state === "stopped") tags.push("stopped");
  const msg = i.status && i.status.message;
  return h("a", {
    href: "#tenant/" + encodeURIComponent(i.tenant),
    class: "chip" + (isServing ? " serving" : isSpare ? " spare" : "") + (moved ? " moved" : "") + (isNew ? " new" : ""),
    "data-instance": i.key, "data-phase": phaseOf(i), "data-serving": isServing ? "yes" : "no",
    title: i.key + " (" + i.process + ") · " + phaseOf(i) + (msg ? " · " + msg : ""),
  }, h("span", { class: "ph p-" + phaseOf(i) }), i.key, tags.length ? h("span", { class: "tag", text: tags.join(" · ") }) : null,
  phaseOf(i) === "unplaceable" || phaseOf(i) === "failed" ? h("span", { class: "why", text: msg || "" }) : null);
}

function serverCard(s, insts, away, sets) {
  const hl = health(s);
  const cap = s.capacity_mb || 1;
  const used = (s.stats && s.stats.used_mb) || 0;
  const bar = capBar(insts, cap, used);
  const sub = [h("span", { class: "url", text: s.url })];
  if (s.state !== "active") sub.push(h("span", { class: "badge warn", text: s.state }));
  const fo = s.status && s.status.failover;
  if (fo) sub.push(h("span", { class: "badge " + (fo === "held" ? "warn" : "bad"), text: "failover " + fo }));
  if (!s.has_token) sub.push(h("span", { class: "badge bad", text: "no token" }));
  const since = s.status && s.status.health_since;
  if (since && !since.startsWith("0001")) sub.push(h("span", { class: "since", text: hl + " since " + fmtTimeMs(since) + " (" + ago(since) + ")" }));
  const chips = insts.slice(0, CHIPS_SHOWN).map((i) => chipOf(i, s, sets));
  if (insts.length > CHIPS_SHOWN) chips.push(h("span", { class: "more", text: "+ " + (insts.length - CHIPS_SHOWN) + " more here: search a tenant to see its own" }));
  const err = s.status && s.status.last_error && hl !== "online" ? s.status.last_error : "";
  return h("article", { class: "server" + (state.flash.has("server:" + s.id) ? " flash" : ""), "data-server": s.id, "data-health": hl },
    h("div", { class: "server-head" },
      h("span", { class: "server-name", text: s.id }),
      s.region ? h("span", { class: "region", text: s.region }) : null,
      h("span", { class: "count", text: insts.length + " instance" + (insts.length === 1 ? "" : "s") }),
      h("span", { class: "pill " + hl, "data-role": "health", text: hl })),
    h("div", { class: "server-sub" }, sub),
    fo && s.status.failover_reason ? h("div", { class: "note " + (fo === "held" ? "warn" : "bad"), text: s.status.failover_reason }) : null,
    err ? h("div", { class: "last-error", "data-role": "last-error", text: err }) : null,
    serverChart(s.id),
    bar,
    h("div", { class: "cap-text" },
      h("span", {}, h("b", { text: fmtMB(used) }), " of " + fmtMB(cap) + " placed"),
      h("span", {}, h("b", { text: fmtMB(Math.max(0, cap - used)) }), " free")),
    h("div", { class: "chips" }, chips.length ? chips : h("span", { class: "empty", text: hl === "dead" ? "nothing runs here now" : "no instances placed here" })),
    away.length ? h("div", { class: "away", "data-role": "ran-here" },
      h("div", { class: "muted small", text: (hl === "dead" ? "Ran here before it died" : "Home here, running elsewhere") + " (" + away.length + "):" }),
      h("ul", {}, away.sort((a, b) => a.key.localeCompare(b.key)).map((i) => h("li", { "data-went": i.key },
        h("span", { class: "ph p-" + phaseOf(i) }), h("a", { href: "#tenant/" + encodeURIComponent(i.tenant), text: i.key }),
        " → " + i.server + " · " + phaseOf(i) + (i.status && i.status.message && phaseOf(i) !== "running" ? " · " + i.status.message : ""))))) : null);
}

// capBar is a server's placed memory, a segment per instance coloured by
// phase; past CHIPS_SHOWN, one segment per phase.
function capBar(insts, cap, used) {
  const seg = (cls, mb, title) => {
    const el = h("span", { class: "p-" + cls, title });
    el.style.width = Math.min(100, (100 * mb) / cap) + "%";
    return el;
  };
  let segs;
  if (insts.length <= CHIPS_SHOWN) {
    segs = insts.map((i) => seg(phaseOf(i), i.memory_mb, i.key + " · " + fmtMB(i.memory_mb) + " · " + phaseOf(i)));
  } else {
    const by = new Map();
    for (const i of insts) { const p = phaseOf(i); const e = by.get(p) || { n: 0, mb: 0 }; e.n++; e.mb += i.memory_mb; by.set(p, e); }
    segs = PHASES.filter((p) => by.has(p)).map((p) => seg(p, by.get(p).mb, by.get(p).n + " " + p + " · " + fmtMB(by.get(p).mb)));
  }
  return h("div", { class: "cap", title: fmtMB(used) + " of " + fmtMB(cap) + " placed" }, segs);
}

const TENANT_ROWS = 100;

const rowCache = new Map(); // tenant id -> { sig, el }

function drawTenants() {
  const all = matchTenants(state.filter || "");
  const shown = all.slice(0, TENANT_ROWS);
  $("tenant-count").textContent = state.filter ? all.length + " of " + state.objects.tenant.size + " match" :
    all.length > TENANT_ROWS ? "busiest " + TENANT_ROWS + " of " + all.length + " · search for the rest" : state.objects.tenant.size + " tenants, busiest first";
  const keep = new Set();
  const els = shown.map((t) => {
    keep.add(t.id);
    const sig = JSON.stringify(t) + "|" + JSON.stringify(tenantRate(t.id)) + "|" + traffic.end;
    const hit = rowCache.get(t.id);
    if (hit && hit.sig === sig && !state.flash.has("tenant:" + t.id)) return hit.el;
    const el = tenantRow(t);
    rowCache.set(t.id, { sig, el });
    return el;
  });
  for (const id of rowCache.keys()) if (!keep.has(id)) rowCache.delete(id);
  const box = $("tenants");
  const cur = [...box.children];
  if (cur.length === els.length && cur.every((c, i) => c.dataset.tenant === els[i].dataset.tenant)) {
    cur.forEach((c, i) => { if (c !== els[i]) c.replaceWith(els[i]); });
  } else {
    box.replaceChildren(...els, ...(all.length ? [] : [h("p", { class: "empty", text: state.filter ? "No tenant matches “" + state.filter + "”." : "No tenants yet." })]));
  }
}

function tenantRow(t) {
  const st = t.status;
  const srv = h("span", { class: "srv" });
  if (st && st.serving && st.serving.length) {
    srv.append(h("span", { class: "ok", "data-serving-copy": st.serving.map((c) => c.instance + "@" + c.server).join(","),
      text: st.serving.map((c) => c.instance + "@" + c.server).join(", ") }));
    if (st.spares && st.spares.length) srv.append(h("span", { class: "spare", text: "spare " + st.spares.map((c) => c.instance + "@" + c.server).join(", ") }));
  } else {
    srv.append(h("span", { class: "none", text: st ? "nothing serves" : "not decided yet" }));
    if (st && st.reason) srv.append(h("span", { class: "spare wrap", text: st.reason }));
  }
  const r = tenantRate(t.id);
  return h("a", { class: "tenant" + (state.flash.has("tenant:" + t.id) ? " flash" : ""), "data-tenant": t.id, href: "#tenant/" + encodeURIComponent(t.id) },
    h("span", { class: "tid" }, t.id,
      t.data === "replicated" ? h("span", { class: "badge", "data-data": "replicated", text: "replicated", title: "data replicated to " + t.replica }) : null),
    h("span", { class: "dom", text: t.domain, title: t.domain }),
    h("span", { class: "rate" }, sparkline(t.id), h("span", { class: "rate-num", text: r ? fmtRate(r.rps) : "–" })), srv);
}

function drawUnplaceable() {
  const bad = [...state.objects.instance.values()].filter((i) => phaseOf(i) === "unplaceable" || phaseOf(i) === "failed" || phaseOf(i) === "down");
  $("trouble-panel").hidden = !bad.length;
  $("trouble").replaceChildren(...bad.sort((a, b) => a.key.localeCompare(b.key)).slice(0, 200).map((i) =>
    h("li", { "data-trouble": i.key }, h("span", { class: "ph p-" + phaseOf(i) }),
      h("a", { href: "#tenant/" + encodeURIComponent(i.tenant), text: i.key }), h("b", { text: " " + phaseOf(i) }),
      " on " + (i.server || "no server") + ": ", h("span", { class: "wrap", text: (i.status && i.status.message) || PHASE_TEXT[phaseOf(i)] }))));
}

function reasonClass(r) {
  if (/^Failover/.test(r)) return r === "FailoverBlocked" ? "bad" : "warn";
  if (/Dead|Failed|Blocked|Unplaceable|Unauthorized|Fenced|Removed/.test(r)) return "bad";
  if (/Online|Spawned|Started|Replaced|Added|Released|Approved/.test(r)) return "good";
  if (/Moved|Rescheduled|ServingChanged|Placed|FailoverStarted|WriterTookOver/.test(r)) return "move";
  if (/Held|Suspect|Retrying|Cordoned|Draining|WaitingForWriter|LeaseRevoked|HandoverAsked/.test(r)) return "warn";
  return "plain";
}

function eventRow(e) {
  return h("li", { class: "event" + (state.flash.has("event:" + e.id) ? " new" : ""), "data-event": e.reason },
    h("time", { text: fmtTimeMs(e.at), title: new Date(e.at).toISOString() }),
    h("span", {}, h("span", { class: "r " + reasonClass(e.reason), text: e.reason }), h("span", { class: "o", text: e.object })),
    h("span", { class: "m", text: e.message }));
}

let eventsSig = "";
function drawEvents() {
  // Newest first by time, then by id: a flush writes the health event
  // that caused some placements after them, with a later id.
  const at = (e) => e.t ?? (e.t = Date.parse(e.at));
  const top = state.events.slice().sort((a, b) => at(b) - at(a) || b.id - a.id).slice(0, 150);
  const sig = top.length + ":" + (state.events[0] ? state.events[0].id : 0) + ":" + top.filter((e) => state.flash.has("event:" + e.id)).length;
  if (sig === eventsSig) return;
  eventsSig = sig;
  $("events").replaceChildren(...top.map(eventRow));
}

// ---- start
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value); });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    location.hash = "";
    location.reload();
  });
  $("fo-prev").addEventListener("click", () => { const i = state.foIndex ?? state.episodes.length - 1; state.foIndex = Math.max(0, i - 1); drawTimeline(); });
  $("fo-next").addEventListener("click", () => {
    const i = (state.foIndex ?? state.episodes.length - 1) + 1;
    state.foIndex = i >= state.episodes.length - 1 ? null : i;
    drawTimeline();
  });
  $("tp-close").addEventListener("click", () => { location.hash = ""; });
  setupSearch();
  setInterval(() => { if (!$("app").hidden) scheduleDraw(); }, 5000); // "since" times age
  if (state.token) signIn(state.token);
  else showLogin();
});
