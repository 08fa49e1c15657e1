// Traffic: the API's history (GET /v1/metrics) of requests per second,
// error rate and latency per tenant and server, fetched once for the last
// ten minutes and then slot by slot, drawn on canvases by this file (no
// chart library).
"use strict";

const TRAFFIC_SLOTS = 120; // ten minutes at the API's 5-second slots
const COLORS = { rps: "#60a5fa", err: "#f87171", p99: "#fbbf24", p50: "#34d399" };

const traffic = { start: 0, step: 5000, end: 0, tenants: new Map(), servers: new Map(), failed: "" };

function emptySeries(n) {
  return { rps: new Array(n).fill(0), err: new Array(n).fill(0), p50: new Array(n).fill(0), p99: new Array(n).fill(0), now: null };
}

// mergeTraffic appends a window's slots to what the page has, keeping the
// last TRAFFIC_SLOTS.
function mergeTraffic(w) {
  const n = w.slots;
  const startMs = new Date(w.start).getTime();
  if (!traffic.end || startMs !== traffic.end) { // first answer, or a gap: start over
    traffic.tenants.clear();
    traffic.servers.clear();
    traffic.start = startMs;
  }
  traffic.step = w.step_ms;
  const total = (traffic.end && startMs === traffic.end ? traffic.slots || 0 : 0) + n;
  const merge = (into, from) => {
    for (const [id, s] of Object.entries(from || {})) {
      let cur = into.get(id);
      if (!cur) { cur = emptySeries(total - n); into.set(id, cur); }
      cur.rps.push(...(s.rps || new Array(n).fill(0)));
      cur.err.push(...(s.error_rate || new Array(n).fill(0)));
      cur.p50.push(...(s.p50_ms || new Array(n).fill(0)));
      cur.p99.push(...(s.p99_ms || new Array(n).fill(0)));
      cur.now = s.now;
    }
    for (const [id, cur] of into) {
      if (!from || !from[id]) { into.delete(id); continue; }
      for (const k of ["rps", "err", "p50", "p99"]) if (cur[k].length > TRAFFIC_SLOTS) cur[k].splice(0, cur[k].length - TRAFFIC_SLOTS);
    }
  };
  merge(traffic.tenants, w.tenants);
  merge(traffic.servers, w.servers);
  traffic.slots = Math.min(total, TRAFFIC_SLOTS);
  traffic.end = new Date(w.end).getTime();
  traffic.start = traffic.end - traffic.slots * traffic.step;
}

async function pollTraffic() {
  for (;;) {
    if ($("app").hidden) return;
    try {
      const q = traffic.end ? "?since=" + traffic.end : "?last=" + (TRAFFIC_SLOTS * 5);
      const w = await api("GET", "/v1/metrics" + q);
      if (w.slots > 0 || !traffic.end) { mergeTraffic(w); scheduleDraw(); }
      traffic.failed = "";
    } catch (e) {
      traffic.failed = e.message;
    }
    await new Promise((r) => setTimeout(r, Math.max(1000, traffic.step / 2)));
  }
}

// fleetTraffic adds every tenant's series up: requests/s and error rate.
function fleetTraffic() {
  const n = traffic.slots || 0;
  const rps = new Array(n).fill(0), errs = new Array(n).fill(0);
  for (const s of traffic.tenants.values()) {
    for (let i = 0; i < n; i++) { rps[i] += s.rps[i] || 0; errs[i] += (s.rps[i] || 0) * (s.err[i] || 0); }
  }
  return { rps, err: rps.map((r, i) => (r ? errs[i] / r : 0)) };
}

function fmtRate(r) {
  if (r >= 100) return Math.round(r) + "/s";
  return (Math.round(r * 10) / 10) + "/s";
}
function fmtMs(v) { return v >= 100 ? Math.round(v) + " ms" : (Math.round(v * 10) / 10) + " ms"; }
function fmtPct(v) { return (Math.round(v * 1000) / 10) + "%"; }

// Charts are drawn once their canvases are on the page (flushCharts, at
// the end of each draw), so they know their size: every size is read
// first, then every chart drawn, so the page is laid out once.
// A chart of the same name (a server's, a tenant's) drawn before keeps
// its size, so a redrawn card does not make the page lay out again; the
// sizes are forgotten when the window's size changes.
const chartQueue = [];
const chartSizes = new Map();
window.addEventListener("resize", () => { chartSizes.clear(); scheduleDraw(); });
function whenPlaced(cv, fn, name) { chartQueue.push({ cv, fn, name }); }
function flushCharts() {
  const items = chartQueue.splice(0).filter((it) => it.cv.isConnected);
  const sizes = items.map((it) => (it.name && chartSizes.get(it.name)) || [it.cv.clientWidth, it.cv.clientHeight]);
  items.forEach((it, i) => {
    it.cv.measured = sizes[i];
    if (it.name && sizes[i][0] > 0) chartSizes.set(it.name, sizes[i]);
    it.fn();
  });
}

// canvasFor sizes a canvas to its box at the screen's pixel density.
function canvasFor(cv) {
  const dpr = window.devicePixelRatio || 1;
  const [mw, mh] = cv.measured || [cv.clientWidth, cv.clientHeight];
  const w = mw || cv.width / dpr, hgt = mh || cv.height / dpr;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(hgt * dpr)) {
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(hgt * dpr);
  }
  const ctx = cv.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  return { ctx, w, h: hgt };
}

// drawLines draws series (each {values, color, max, fill}) over the
// canvas' width; each series scales to its own max unless given one.
function drawLines(cv, series, opts) {
  const { ctx, w, h: hh } = canvasFor(cv);
  const pad = (opts && opts.pad) || 2;
  if (opts && opts.grid) {
    ctx.strokeStyle = "rgba(139,150,191,0.15)";
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) { const y = Math.round((hh * i) / 4) + 0.5; ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke(); }
  }
  for (const s of series) {
    const v = s.values;
    if (!v || v.length < 2) continue;
    const max = s.max || Math.max(...v) || 1;
    const x = (i) => (i * (w - 2 * pad)) / (v.length - 1) + pad;
    const y = (val) => hh - pad - (Math.min(val, max) / max) * (hh - 2 * pad);
    ctx.beginPath();
    v.forEach((val, i) => (i ? ctx.lineTo(x(i), y(val)) : ctx.moveTo(x(i), y(val))));
    if (s.fill) {
      ctx.lineTo(x(v.length - 1), hh - pad);
      ctx.lineTo(x(0), hh - pad);
      ctx.closePath();
      ctx.fillStyle = s.fill;
      ctx.fill();
      ctx.beginPath();
      v.forEach((val, i) => (i ? ctx.lineTo(x(i), y(val)) : ctx.moveTo(x(i), y(val))));
    }
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 1.5;
    ctx.stroke();
  }
}

// drawFleetTraffic is the chart at the top: the whole fleet's requests
// per second and error rate.
function drawFleetTraffic() {
  const f = fleetTraffic();
  const cv = $("fleet-chart");
  const last = f.rps.length ? f.rps[f.rps.length - 1] : 0;
  const peak = f.rps.length ? Math.max(...f.rps) : 0;
  const lastErr = f.err.length ? f.err[f.err.length - 1] : 0;
  $("fleet-traffic-now").replaceChildren(
    h("span", { class: "k-rps" }, h("b", { "data-role": "fleet-rps", text: fmtRate(last) }), " requests"),
    h("span", { class: "k-err" }, h("b", { text: fmtPct(lastErr) }), " errors"),
    h("span", { class: "muted", text: "peak " + fmtRate(peak) + " · last " + Math.round((traffic.slots * traffic.step) / 60000) + " min" }),
    ...(traffic.failed ? [h("span", { class: "bad-text", text: "traffic: " + traffic.failed })] : []));
  cv.dataset.points = String(f.rps.length);
  cv.dataset.peak = String(peak);
  drawLines(cv, [
    { values: f.rps, color: COLORS.rps, fill: "rgba(96,165,250,0.15)", max: Math.max(1, peak * 1.1) },
    { values: f.err, color: COLORS.err, max: 1 },
  ], { grid: true, pad: 3 });
  $("fleet-axis").replaceChildren(
    h("span", { text: traffic.start ? fmtClock(traffic.start) : "" }),
    h("span", { text: traffic.end ? fmtClock(traffic.end) : "waiting for the routers' first report" }));
}

// serverChart is a server card's chart: requests/s through it and its
// upstream p99.
function serverChart(id) {
  const s = traffic.servers.get(id);
  const cv = h("canvas", { class: "chart small-chart", "data-chart-server": id, "aria-label": "traffic through " + id, role: "img" });
  const now = s && s.now;
  const label = h("div", { class: "chart-now" },
    h("span", { class: "k-rps" }, h("b", { text: now ? fmtRate(now.rps) : "–" }), " upstream"),
    h("span", { class: "k-p99" }, h("b", { text: now && now.p99_ms ? fmtMs(now.p99_ms) : "–" }), " p99"),
    h("span", { class: "k-p50" }, h("b", { text: now && now.p50_ms ? fmtMs(now.p50_ms) : "–" }), " p50"));
  whenPlaced(cv, () => {
    if (!s) { canvasFor(cv); return; }
    drawLines(cv, [
      { values: s.rps, color: COLORS.rps, fill: "rgba(96,165,250,0.12)" },
      { values: s.p99, color: COLORS.p99, width: 1 },
    ], { pad: 2 });
  }, "server-chart");
  return h("div", { class: "server-chart" }, cv, label);
}

// sparkline is a tenant's requests/s (and errors) in a row.
function sparkline(id, big) {
  const s = traffic.tenants.get(id);
  const cv = h("canvas", { class: big ? "chart big-chart" : "spark", "aria-hidden": big ? null : "true", "data-spark": id });
  whenPlaced(cv, () => {
    if (!s) { canvasFor(cv); return; }
    const series = [{ values: s.rps, color: COLORS.rps, fill: big ? "rgba(96,165,250,0.15)" : null }, { values: s.err, color: COLORS.err, max: 1, width: 1 }];
    if (big) series.push({ values: s.p99, color: COLORS.p99, width: 1 }, { values: s.p50, color: COLORS.p50, width: 1 });
    drawLines(cv, series, { grid: big, pad: 2 });
  }, big ? "" : "spark");
  return cv;
}

function tenantRate(id) {
  const s = traffic.tenants.get(id);
  return (s && s.now) || null;
}
