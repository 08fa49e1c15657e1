// Rolling restarts ('slum restart') on the dashboard: the latest rollouts,
// each copy's step drawn in restart order, read from /v1/rollouts (they
// are not in the watch). Polled every second while one runs, every ten
// otherwise, and at once when an event says one moved.
"use strict";

const rollouts = { list: [], failed: "", wake: null };
const ROLLOUT_REASONS = new Set(["RolloutStarted", "Restarted", "RestartFailed", "RolloutDone"]);
const STEP_TEXT = {
  pending: "waiting for its turn", restarting: "restarting now", done: "restarted and healthy again",
  failed: "not healthy again in time: the rollout halted here", skipped: "gone by its turn: skipped",
};
const ROLLOUT_TEXT = { running: "running", done: "done", failed: "halted", abandoned: "abandoned", interrupted: "interrupted" };
const ROLLOUT_STALE_MS = 15000; // slum.RolloutStale: a runner this quiet is gone

async function pollRollouts() {
  for (;;) {
    if ($("app").hidden) return;
    try {
      rollouts.list = (await api("GET", "/v1/rollouts?last=5")) || [];
      rollouts.failed = "";
    } catch (e) {
      rollouts.failed = e.message;
    }
    scheduleDraw();
    const running = rollouts.list.some((r) => r.state === "running");
    await new Promise((wake) => { rollouts.wake = wake; setTimeout(wake, running ? 1000 : 10000); });
  }
}

// rolloutEvents wakes the poll when an event says a rollout moved.
function rolloutEvents(evs) {
  if (rollouts.wake && (evs || []).some((e) => ROLLOUT_REASONS.has(e.reason))) rollouts.wake();
}

function rolloutSpecText(s) {
  let what = s.all ? "every copy" : s.tenant ? "tenant " + s.tenant : s.server ? "the copies on " + s.server : "?";
  if (s.process) what += " (process " + s.process + ")";
  if (s.parallel > 1) what += ", " + s.parallel + " at a time";
  return what;
}

// rolloutState is a rollout's state as shown: a running one whose runner
// stopped saying it is alive is interrupted.
function rolloutState(r) {
  const hb = Date.parse(r.heartbeat || "");
  return r.state === "running" && hb && Date.now() - hb > ROLLOUT_STALE_MS ? "interrupted" : r.state;
}

let rolloutsSig = "";
function drawRollouts() {
  const recent = rollouts.list.filter((r) => r.state === "running" || Date.now() - Date.parse(r.updated_at) < 3600e3);
  const panel = $("rollouts-panel");
  panel.hidden = recent.length === 0 && !rollouts.failed;
  if (panel.hidden) return;
  const sig = rollouts.failed + JSON.stringify(recent.map((r) => [r.id, rolloutState(r), r.updated_at, r.steps.map((s) => s.state).join()]));
  if (sig === rolloutsSig) return;
  rolloutsSig = sig;
  $("rollouts-error").textContent = rollouts.failed ? "Cannot read the rollouts: " + rollouts.failed : "";
  $("rollouts").replaceChildren(...recent.map(rolloutCard));
}

function rolloutCard(r) {
  const steps = r.steps || [];
  const n = { pending: 0, restarting: 0, done: 0, failed: 0, skipped: 0 };
  for (const s of steps) n[s.state] = (n[s.state] || 0) + 1;
  const st = rolloutState(r);
  const cls = { running: "", done: "good", failed: "bad", abandoned: "warn", interrupted: "warn" }[st] || "";
  let counts = n.done + " of " + steps.length + " restarted";
  if (n.restarting) counts += " · " + n.restarting + " restarting";
  if (n.failed) counts += " · " + n.failed + " failed";
  if (n.skipped) counts += " · " + n.skipped + " skipped";
  const took = Date.parse(r.updated_at) - Date.parse(r.created_at);
  const when = st === "running" || st === "interrupted" ? "started " + ago(r.created_at) + " ago" :
    "finished " + ago(r.updated_at) + " ago, took " + (took >= 0 ? (took / 1000).toFixed(1) + " s" : "?");
  const now = steps.filter((s) => s.state === "restarting");
  return h("div", { class: "rollout", "data-rollout": r.id, "data-state": st },
    h("div", { class: "ro-head" },
      h("b", { text: "Restart " + r.id }), h("span", { text: " — " + rolloutSpecText(r.spec || {}) }),
      h("span", { class: "badge " + cls, "data-role": "ro-state", text: ROLLOUT_TEXT[st] || st }),
      h("span", { class: "muted small", text: when })),
    h("div", { class: "ro-bar", role: "img", "aria-label": counts },
      steps.map((s) => h("span", { class: "ro-step " + s.state, "data-step": s.instance, "data-step-state": s.state,
        title: s.instance + " on " + s.server + ": " + (STEP_TEXT[s.state] || s.state) + (s.serving ? " (it served: its turn came after the others)" : "") + (s.message ? " — " + s.message : "") }))),
    h("div", { class: "small", "data-role": "ro-counts", text: counts }),
    now.length ? h("div", { class: "small" }, "Now: ", now.map((s) => h("code", { text: s.instance + "@" + s.server }))) : null,
    r.message ? h("div", { class: "small " + (st === "failed" ? "error" : "muted"), text: r.message }) : null,
    st === "interrupted" ? h("div", { class: "small warn-text", text: "Its runner stopped saying it is alive " + ago(r.heartbeat) +
      " ago: 'slum restart --resume' goes on where it stopped, 'slum restart --abandon' gives it up." }) : null);
}
