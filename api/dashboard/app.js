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
};

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
function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
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
      await readStream(res.body);
      throw new Error("stream ended");
    } catch (e) {
      if (ctl.signal.aborted && $("app").hidden) return;
      setLive("reconnecting");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 8000);
    }
  }
}

async function readStream(body) {
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
        if (ev.id) state.lastId = ev.id;
        if (ev.data.length) handle(ev.event, JSON.parse(ev.data.join("\n")));
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
  if (name === "reset") {
    state.resets++;
    document.getElementById("live").dataset.resets = String(state.resets);
    for (const m of Object.values(state.objects)) m.clear();
    for (const c of msg.objects || []) put(c);
    state.events = (msg.events || []).slice().reverse();
  } else if (name === "changes") {
    for (const c of msg.changes || []) {
      const old = state.objects[c.kind] && state.objects[c.kind].get(c.id);
      put(c);
      if (c.kind === "server" && old && c.object && health(old) !== health(c.object)) state.flash.add("server:" + c.id);
      if (c.kind === "tenant" && old && c.object && servingText(old) !== servingText(c.object)) state.flash.add("tenant:" + c.id);
    }
    for (const e of msg.events || []) { state.events.unshift(e); state.flash.add("event:" + e.id); }
    state.events.length = Math.min(state.events.length, 200);
  } else {
    return;
  }
  state.revision = msg.revision;
  state.statusRevision = msg.status_revision;
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
  drawSummary();
  drawHolds();
  drawServers();
  drawTenants();
  drawEvents();
  $("footer").textContent = "desired revision " + state.revision + " · status revision " + state.statusRevision +
    " · " + state.objects.route.size + " routes";
  state.flash.clear();
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
        actions.length ? h("ul", {}, actions.slice(0, 6).map((a) => h("li", { text: a })),
          actions.length > 6 ? h("li", { text: "… and " + (actions.length - 6) + " more" }) : null) : null),
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

function drawLegend() {
  $("legend").replaceChildren(...PHASES.slice(0, 6).map((p) => h("span", {}, h("i", { class: "p-" + p }), p)));
}

function drawServers() {
  const servers = [...state.objects.server.values()].sort((a, b) => a.id.localeCompare(b.id));
  const byServer = new Map();
  for (const i of state.objects.instance.values()) {
    if (!byServer.has(i.server)) byServer.set(i.server, []);
    byServer.get(i.server).push(i);
  }
  const { serving, spare } = servingSets();
  const cards = servers.map((s) => {
    const hl = health(s);
    const insts = (byServer.get(s.id) || []).sort((a, b) => a.key.localeCompare(b.key));
    const cap = s.capacity_mb || 1;
    const used = (s.stats && s.stats.used_mb) || 0;
    const bar = h("div", { class: "cap", title: fmtMB(used) + " of " + fmtMB(cap) + " placed" },
      insts.map((i) => {
        const seg = h("span", { class: "p-" + phaseOf(i), title: i.key + " · " + fmtMB(i.memory_mb) + " · " + phaseOf(i) });
        seg.style.width = Math.min(100, (100 * i.memory_mb) / cap) + "%";
        return seg;
      }));
    const chips = insts.map((i) => {
      const ref = i.tenant + ":" + i.id + "@" + s.id;
      const isServing = serving.has(ref), isSpare = spare.has(ref);
      const moved = i.home_server && i.home_server !== i.server;
      const prev = state.seenChips.get(i.key);
      const isNew = !state.firstDraw && prev !== s.id;
      state.seenChips.set(i.key, s.id);
      const tags = [];
      if (isServing) tags.push("serving");
      else if (isSpare) tags.push("spare");
      if (moved) tags.push("↪ from " + i.home_server);
      if (i.desired_state === "stopped") tags.push("stopped");
      return h("span", {
        class: "chip" + (isServing ? " serving" : "") + (moved ? " moved" : "") + (isNew ? " new" : ""),
        "data-instance": i.key, "data-phase": phaseOf(i), "data-serving": isServing ? "yes" : "no",
        title: i.key + " (" + i.process + ") · " + phaseOf(i) + (i.status && i.status.message ? " · " + i.status.message : ""),
      }, h("span", { class: "ph p-" + phaseOf(i) }), i.key, tags.length ? h("span", { class: "tag", text: tags.join(" · ") }) : null);
    });
    const sub = [h("span", { text: s.url })];
    if (s.state !== "active") sub.push(h("span", { class: "badge warn", text: s.state }));
    const fo = s.status && s.status.failover;
    if (fo) sub.push(h("span", { class: "badge " + (fo === "held" ? "warn" : "bad"), text: fo, title: s.status.failover_reason }));
    if (!s.has_token) sub.push(h("span", { class: "badge bad", text: "no token" }));
    const since = s.status && ago(s.status.health_since);
    if (since) sub.push(h("span", { class: "since", text: hl + " for " + since }));
    const card = h("article", { class: "server" + (state.flash.has("server:" + s.id) ? " flash" : ""), "data-server": s.id, "data-health": hl },
      h("div", { class: "server-head" },
        h("span", { class: "server-name", text: s.id }),
        s.region ? h("span", { class: "region", text: s.region }) : null,
        h("span", { class: "count", text: insts.length + " instance" + (insts.length === 1 ? "" : "s") }),
        h("span", { class: "pill " + hl, "data-role": "health", text: hl })),
      h("div", { class: "server-sub" }, sub),
      bar,
      h("div", { class: "cap-text" },
        h("span", {}, h("b", { text: fmtMB(used) }), " of " + fmtMB(cap) + " placed"),
        h("span", {}, h("b", { text: fmtMB(Math.max(0, cap - used)) }), " free")),
      h("div", { class: "chips" }, chips.length ? chips : h("span", { class: "empty", text: "no instances placed here" })),
      s.status && s.status.last_error && hl !== "online" ? h("div", { class: "last-error", text: s.status.last_error, title: s.status.last_error }) : null);
    return card;
  });
  $("servers").replaceChildren(...(cards.length ? cards : [h("p", { class: "empty", text: "No servers yet: slum server add, or slum apply -f fleet.yaml." })]));
}

function drawTenants() {
  const tenants = [...state.objects.tenant.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("tenants").replaceChildren(...tenants.map((t) => {
    const st = t.status;
    const srv = h("div", { class: "srv" });
    if (st && st.serving && st.serving.length) {
      srv.append(h("span", { class: "ok", "data-serving-copy": st.serving.map((c) => c.instance + "@" + c.server).join(","),
        text: st.serving.map((c) => c.instance + "@" + c.server).join(", ") }));
      if (st.spares && st.spares.length) srv.append(h("span", { class: "spare", text: "spare " + st.spares.map((c) => c.instance + "@" + c.server).join(", ") }));
    } else {
      srv.append(h("span", { class: "none", text: st ? "nothing serves" : "not decided yet" }));
      if (st && st.reason) srv.append(h("span", { class: "spare", text: st.reason }));
    }
    return h("div", { class: "tenant" + (state.flash.has("tenant:" + t.id) ? " flash" : ""), "data-tenant": t.id },
      h("span", { class: "tid", text: t.id }), h("span", { class: "dom", text: t.domain }),
      ...(t.data === "replicated" ? [h("span", { class: "badge", "data-data": "replicated", text: "replicated", title: "data replicated to " + t.replica })] : []), srv);
  }));
}

function reasonClass(r) {
  if (/^Failover/.test(r)) return r === "FailoverBlocked" ? "bad" : "warn";
  if (/Dead|Failed|Blocked|Unplaceable|Unauthorized|Fenced|Removed/.test(r)) return "bad";
  if (/Online|Spawned|Started|Replaced|Added|Released|Approved/.test(r)) return "good";
  if (/Moved|Rescheduled|ServingChanged|Placed|FailoverStarted|WriterTookOver/.test(r)) return "move";
  if (/Held|Suspect|Retrying|Cordoned|Draining|WaitingForWriter|LeaseRevoked|HandoverAsked/.test(r)) return "warn";
  return "plain";
}

function drawEvents() {
  $("events").replaceChildren(...state.events.slice(0, 120).map((e) =>
    h("li", { class: "event" + (state.flash.has("event:" + e.id) ? " new" : ""), "data-event": e.reason },
      h("time", { text: fmtTime(e.at) }),
      h("span", {}, h("span", { class: "r " + reasonClass(e.reason), text: e.reason }), h("span", { class: "o", text: e.object })),
      h("span", { class: "m", text: e.message }))));
}

// ---- start
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value); });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    location.reload();
  });
  setInterval(() => { if (!$("app").hidden) scheduleDraw(); }, 5000); // "since" times age
  if (state.token) signIn(state.token);
  else showLogin();
});
