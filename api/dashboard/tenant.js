// One tenant's page (#tenant/ID): its copies and where they run, which
// serves, its policies, its traffic, its events and its live log (GET
// /v1/tenants/{id}/logs?follow=true, server-sent events read from a
// fetch). Reached from the search box or a tenant's row.
"use strict";

const tenantPage = { id: "", abort: null, lines: [] };

function matchTenants(q) {
  q = q.trim().toLowerCase();
  const out = [];
  for (const t of state.objects.tenant.values()) {
    if (!q || t.id.toLowerCase().includes(q) || (t.domain || "").toLowerCase().includes(q)) out.push(t);
  }
  out.sort((a, b) => {
    const ra = (tenantRate(a.id) || {}).rps || 0, rb = (tenantRate(b.id) || {}).rps || 0;
    const exact = (t) => (t.id === q || t.domain === q ? 0 : 1);
    return exact(a) - exact(b) || rb - ra || a.id.localeCompare(b.id);
  });
  return out;
}

function setupSearch() {
  const input = $("search");
  let slashed = false; // focused by "/": a browser that types it anyway has it taken back
  input.addEventListener("input", () => {
    if (slashed && input.value.startsWith("/")) input.value = input.value.slice(1);
    slashed = false;
    state.filter = input.value;
    drawTenants();
  });
  // Enter submits the search form: the first match's page opens.
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const first = matchTenants(input.value)[0];
    if (first) location.hash = "#tenant/" + encodeURIComponent(first.id);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { input.value = ""; state.filter = ""; drawTenants(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement !== input && !/INPUT|TEXTAREA/.test((document.activeElement || {}).tagName)) { e.preventDefault(); slashed = !input.value; input.focus(); }
    if (e.key === "Escape" && tenantPage.id) location.hash = "";
  });
  window.addEventListener("hashchange", route);
}

function route() {
  const m = /^#tenant\/(.+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : "";
  if (id === tenantPage.id) return;
  if (tenantPage.abort) tenantPage.abort.abort();
  tenantPage.id = id;
  tenantPage.lines = [];
  $("tenant-page").hidden = !id;
  document.body.classList.toggle("has-page", !!id);
  if (!id) return;
  drawTenantPage();
  flushCharts();
  $("tp-close").focus();
  followLog(id);
}

function drawTenantPage() {
  const id = tenantPage.id;
  if (!id || $("tenant-page").hidden) return;
  const t = state.objects.tenant.get(id);
  $("tp-title").textContent = id;
  if (!t) { $("tp-body").replaceChildren(h("p", { class: "empty", text: "No tenant " + id + " in the fleet (removed?)." })); return; }
  const st = t.status || {};
  const insts = [...state.objects.instance.values()].filter((i) => i.tenant === id).sort((a, b) => a.id.localeCompare(b.id));
  const serving = new Set((st.serving || []).map((c) => c.instance + "@" + c.server));
  const spare = new Set((st.spares || []).map((c) => c.instance + "@" + c.server));
  const rate = tenantRate(id);
  const evs = state.history.filter((e) => e.object === "tenant/" + id || e.object.startsWith("instance/" + id + ":")).slice(-40).reverse();
  $("tp-body").replaceChildren(
    h("div", { class: "tp-grid" },
      h("div", { class: "panel" }, h("h3", { text: "Policies" }), h("dl", { class: "kv" },
        kv("domain", t.domain), kv("region", t.region || "any"), kv("failover", t.failover), kv("serving", t.serving),
        t.data ? kv("data", t.data + (t.replica ? " → " + t.replica : "")) : null,
        kv("served by", (st.serving || []).map((c) => c.instance + "@" + c.server).join(", ") || "nothing" + (st.reason ? ": " + st.reason : "")),
        kv("since", st.changed_at ? fmtTimeMs(st.changed_at) : "–"))),
      h("div", { class: "panel" }, h("h3", { text: "Traffic, last 10 minutes" }),
        h("div", { class: "chart-now" },
          h("span", { class: "k-rps" }, h("b", { "data-role": "tenant-rps", text: rate ? fmtRate(rate.rps) : "–" }), " requests"),
          h("span", { class: "k-err" }, h("b", { text: rate ? fmtPct(rate.error_rate) : "–" }), " errors"),
          h("span", { class: "k-p50" }, h("b", { "data-role": "tenant-p50", text: rate && rate.p50_ms ? fmtMs(rate.p50_ms) : "–" }), " p50"),
          h("span", { class: "k-p99" }, h("b", { "data-role": "tenant-p99", text: rate && rate.p99_ms ? fmtMs(rate.p99_ms) : "–" }), " p99")),
        sparkline(id, true), chartKey(["rps", "err", "p50", "p99"]))),
    h("div", { class: "panel" }, h("h3", { text: "Copies" }), h("table", { class: "copies" },
      h("thead", {}, h("tr", {}, ["copy", "process", "server", "phase", "role", "what slum says"].map((x) => h("th", { text: x })))),
      h("tbody", {}, insts.map((i) => {
        const ref = i.id + "@" + i.server;
        const role = serving.has(ref) ? "serving" : spare.has(ref) ? "warm spare" : i.desired_state === "stopped" ? "stopped" : "–";
        return h("tr", { "data-copy": i.key },
          h("td", { text: i.id }), h("td", { text: i.process }),
          h("td", { text: i.server + (i.home_server && i.home_server !== i.server ? " (home " + i.home_server + ")" : "") }),
          h("td", {}, h("span", { class: "ph p-" + phaseOf(i) }), " " + phaseOf(i)), h("td", { text: role }),
          h("td", { class: "wrap", text: (i.status && i.status.message) || "" }));
      })))),
    h("div", { class: "tp-grid" },
      h("div", { class: "panel" }, h("h3", { text: "Events" }), h("ol", { class: "events" }, evs.length ? evs.map(eventRow) : h("li", { class: "empty", text: "none in the recent log" }))),
      h("div", { class: "panel" }, h("h3", {}, "Live log ", h("span", { id: "tp-log-state", class: "log-state", text: tenantPage.logState || "" })),
        h("pre", { id: "tp-log", class: "log", tabindex: "0", "aria-label": "live log of " + id }))));
  drawLog();
}

function kv(k, v) { return [h("dt", { text: k }), h("dd", { text: v === undefined || v === "" ? "–" : String(v) })]; }

function drawLog() {
  const pre = $("tp-log");
  if (!pre) return;
  pre.replaceChildren(...tenantPage.lines.slice(-300).map((l) =>
    h("div", { class: "logline" + (l.gone ? " gone" : "") },
      h("time", { text: l.time ? fmtTimeMs(l.time) : "" }), h("span", { class: "lc", text: l.copy || "" }), h("span", { text: l.message || "" }))));
  pre.scrollTop = pre.scrollHeight;
  const ls = $("tp-log-state");
  if (ls) ls.textContent = tenantPage.logState || "";
}

async function followLog(id) {
  const ctl = new AbortController();
  tenantPage.abort = ctl;
  tenantPage.logState = "connecting…";
  try {
    const res = await fetch("/v1/tenants/" + encodeURIComponent(id) + "/logs?follow=true&lines=100",
      { headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" }, signal: ctl.signal, cache: "no-store" });
    if (!res.ok) {
      let msg = res.statusText;
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    tenantPage.logState = "following";
    drawLog();
    await readSSE(res.body, (event, data) => {
      if (tenantPage.id !== id) return;
      if (event === "line") tenantPage.lines.push(data);
      else if (event === "notice") tenantPage.lines.push({ time: data.time, copy: "slum", message: data.message || JSON.stringify(data) });
      else if (event === "end") tenantPage.logState = "ended";
      else if (event === "error") tenantPage.logState = "error: " + ((data.error && data.error.message) || JSON.stringify(data));
      if (tenantPage.lines.length > 1000) tenantPage.lines.splice(0, tenantPage.lines.length - 1000);
      scheduleLog();
    });
    if (tenantPage.id === id && tenantPage.logState === "following") tenantPage.logState = "stream closed";
  } catch (e) {
    if (ctl.signal.aborted) return;
    tenantPage.logState = "log unavailable: " + e.message;
  }
  if (tenantPage.id === id) drawLog();
}

let logPending = false;
function scheduleLog() {
  if (logPending) return;
  logPending = true;
  requestAnimationFrame(() => { logPending = false; drawLog(); });
}
