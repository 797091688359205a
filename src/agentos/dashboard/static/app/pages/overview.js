// Overview: the state of the whole system at a glance, live.
import { get } from "../api.js";
import { timeChart } from "../charts.js";
import { ago, badge, card, every, fill, fillRows, filters, h, link, liveMark, short, table, time, title } from "../ui.js";

const WINDOWS = [["24", "the last 24 hours"], ["6", "the last 6 hours"], ["72", "the last 3 days"],
                 ["168", "the last 7 days"]];
const HOUR_S = 3600;

export async function render({ main, query }) {
  const hours = Number(query.get("window") || 24);
  const tiles = h("div", { class: "tiles", "aria-live": "off" });
  const failures = h("tbody");
  const waits = h("tbody");
  const failureColumns = [
    { label: "Task", cell: (t) => link(`/tasks/${t.id}`, short(t.id)) },
    { label: "Agent", cell: (t) => t.agent },
    { label: "Failed", cell: (t) => time(t.finished_at) },
    { label: "Error", cell: (t) => (t.error ? `${t.error.type}: ${t.error.message ?? ""}`.slice(0, 120) : "–") },
  ];
  const waitColumns = [
    { label: "Resource", cell: (l) => h("code", {}, l.resource) },
    { label: "Held by", cell: (l) => (l.holder ? h("span", { class: "mono" }, l.holder.owner) : "free") },
    { label: "Waiting", cell: (l) => l.queue.length, num: true },
    { label: "Longest wait", cell: (l) => ago(l.queue[0]?.queued_at) },
  ];
  const failureTable = table({ caption: "Recent failures", columns: failureColumns, rows: [] });
  failureTable.querySelector("tbody").replaceWith(failures);
  const waitTable = table({ caption: "Lock waits", columns: waitColumns, rows: [] });
  waitTable.querySelector("tbody").replaceWith(waits);
  const agentColumns = [
    { label: "Agent", cell: (a) => link(`/agents/${encodeURIComponent(a.agent)}`, a.agent) },
    { label: "Waiting", cell: (a) => bar(a.tasks.pending, agentMax) },
    { label: "Running", cell: (a) => a.tasks.running, num: true },
    { label: "Succeeded", cell: (a) => a.tasks.succeeded, num: true },
    { label: "Failed", cell: (a) => (a.tasks.failed ? badge(String(a.tasks.failed), "bad") : 0), num: true },
    { label: "Last run", cell: (a) => (a.last_run ? [badge(a.last_run.status), " ", ago(a.last_run.started_at)] : "–") },
  ];
  const agentTable = table({ caption: "Queue by agent", columns: agentColumns, rows: [] });
  const agents = agentTable.querySelector("tbody");
  let agentMax = 1;
  const chart = timeChart({ caption: `Task outcomes per hour, ${WINDOWS.find(([v]) => Number(v) === hours)?.[1] ?? `the last ${hours} hours`}`,
                            times: [], series: [], yLabel: "tasks" });
  const lagNote = h("p", { class: "muted" });
  fill(main, title("Overview", liveMark()), tiles,
    card("Throughput and failures",
      filters([{ name: "window", label: "Window", options: WINDOWS }], query, { submit: "Show" }),
      chart, lagNote),
    h("div", { class: "grid" },
      card("Queue by agent", agentTable),
      card("Recent failures", failureTable, h("p", {}, link("/tasks?status=failed", "all failed tasks"))),
      card("Lock waits", waitTable, h("p", {}, link("/locks", "all locks")))));

  // the charts come from the task-statistics and agent-activity read models
  async function charts() {
    const start = Math.floor(Date.now() / 1000 / HOUR_S) * HOUR_S - (hours - 1) * HOUR_S;
    const [stats, activity, status] = await Promise.all([
      get("/api/v1/projections/task_stats/state",
          { prefix: "hour:", after: hourKey(start - HOUR_S), limit: hours + 1 }),
      get("/api/v1/projections/agent_activity/state", { limit: 200 }),
      get("/api/v1/projections/task_stats"),
    ]);
    const times = Array.from({ length: hours }, (_, i) => start + i * HOUR_S);
    const count = (kind) => times.map((t) => stats.items[hourKey(t)]?.[kind] ?? 0);
    chart.update(times, [{ label: "submitted", values: count("created") },
                         { label: "failed", values: count("failed") },
                         { label: "succeeded", values: count("succeeded") }]);
    lagNote.textContent = status.lag_events
      ? `The counts are ${status.lag_events} events (${status.lag_s.toFixed(0)} s) behind the log.`
      : "Counted from the event log as it happens (the task_stats read model).";
    const rows = Object.values(activity.items)
      .sort((a, b) => (b.tasks.pending + b.tasks.running) - (a.tasks.pending + a.tasks.running))
      .slice(0, 15);
    agentMax = Math.max(1, ...rows.map((a) => a.tasks.pending));
    fillRows(agents, agentColumns, rows, "no task has run yet");
  }

  async function refresh() {
    const today = new Date().toISOString().slice(0, 10) + "T00:00:00Z";
    const [ready, { workers }, { locks }, failed, { schedules }, llm] = await Promise.all([
      get("/ready").catch((e) => ({ status: "not ready", error: e.message })),
      get("/api/v1/workers"),
      get("/api/v1/locks"),
      get("/api/v1/tasks", { status: "failed", order: "desc", limit: 8 }),
      get("/api/v1/schedules"),
      get("/api/v1/llm-calls/summary", { by: "day", since: today }),
    ]);
    const spent = llm.rows[0];
    const alive = workers.filter((w) => w.alive);
    const slots = alive.reduce((n, w) => n + w.concurrency, 0);
    const running = alive.reduce((n, w) => n + w.running, 0);
    const held = locks.filter((l) => l.holder);
    const waiting = locks.reduce((n, l) => n + l.queue.length, 0);
    fill(tiles,
      tile("Database", ready.status === "ready" ? `${ready.database.dialect}` : "not ready",
           ready.status === "ready" ? `schema ${ready.schema.current}` : ready.error, ready.status === "ready" ? "ok" : "bad"),
      tile("Workers alive", alive.length, `${slots} slots`, alive.length ? "ok" : "bad", "/workers"),
      tile("Running tasks", running, `of ${slots} slots`, null, "/tasks?status=running"),
      tile("Locks held", held.length, `${waiting} waiting`, waiting ? "warn" : null, "/locks"),
      tile("Schedules", schedules.filter((s) => !s.paused && s.next_run_at).length, "active", null, "/schedules"),
      tile("LLM cost today", spent ? Number(spent.cost.toPrecision(3)) : 0,
           spent ? `${spent.calls} calls, ${spent.total_tokens.toLocaleString()} tokens` : "no calls (UTC day)",
           null, "/llm"));
    fillRows(failures, failureColumns, failed.tasks, "no failed task");
    fillRows(waits, waitColumns, locks.filter((l) => l.queue.length), "no one is waiting for a lock");
  }
  await Promise.all([refresh(), charts()]);
  every(3000, refresh);
  every(5000, charts);
}

// task_stats' key of the hour starting at t (seconds, UTC)
function hourKey(t) {
  return `hour:${new Date(t * 1000).toISOString().slice(0, 13)}`;
}

function bar(n, max) {
  return h("span", { class: "bar-cell" },
    h("meter", { min: 0, max, value: n, "aria-label": `${n} waiting` }), ` ${n}`);
}

function tile(label, value, note, tone, href) {
  const body = [h("span", { class: "value" }, value), h("span", { class: "label" }, label),
                note ? h("div", { class: "muted" }, tone ? badge(note, tone) : note) : null];
  return h("div", { class: "tile" }, href ? h("a", { href, class: "tile-link" }, body) : body);
}
