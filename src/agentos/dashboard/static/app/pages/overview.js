// Overview: the state of the whole system at a glance, live.
import { ApiError, get } from "../api.js";
import { timeChart } from "../charts.js";
import { ago, badge, card, every, fill, fillRows, filters, h, link, liveMark, short, table, time, title } from "../ui.js";

const WINDOWS = [["24", "the last 24 hours"], ["6", "the last 6 hours"], ["72", "the last 3 days"],
                 ["168", "the last 7 days"]];
const HOUR_S = 3600;
const MAX_SPAN_DAYS = 31;
const KEPT_DAYS = 90; // the 1 h metric rollups' retention

// The charts' window: the last N hours (live), or an absolute from/to (ISO times in the
// URL, so a link shows the same window); a bad from/to is said, and the last N hours shown.
export function chosenWindow(query) {
  const hours = Number(query.get("window") || 24);
  const last = { hours, span: WINDOWS.find(([v]) => Number(v) === hours)?.[1] ?? `the last ${hours} hours` };
  const [from, to] = [query.get("from"), query.get("to")];
  if (!from && !to) return last;
  const [a, b] = [Date.parse(from ?? ""), Date.parse(to ?? "")];
  let error = null;
  if (!from || !to) error = "Give both From and To for a window of your own.";
  else if (Number.isNaN(a) || Number.isNaN(b)) error = "From and To must be times, like 2026-12-01T10:00:00Z.";
  else if (a >= b) error = "From must be before To.";
  else if (b - a > MAX_SPAN_DAYS * 86400_000) error = `A window spans at most ${MAX_SPAN_DAYS} days.`;
  else if (a < Date.now() - KEPT_DAYS * 86400_000) error = `From must be within the last ${KEPT_DAYS} days (what the hourly metrics keep).`;
  if (error) return { ...last, error };
  const start = Math.floor(a / 1000 / HOUR_S) * HOUR_S;
  const end = Math.ceil(b / 1000 / HOUR_S) * HOUR_S;
  const utc = (ms) => `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return { start, hours: (end - start) / HOUR_S, span: `from ${utc(a)} to ${utc(b)}` };
}

export async function render({ main, query }) {
  const range = chosenWindow(query);
  const { hours, span } = range;
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
  const chart = timeChart({ caption: `Task outcomes per hour, ${span}`,
                            times: [], series: [], yLabel: "tasks" });
  const lagNote = h("p", { class: "muted" });
  // the automatic metrics (the metrics consumer folds them from the log), per hour
  const recorded = [
    { metric: "queue.depth", tags: "status:pending", group_by: "agent", agg: "max",
      caption: `Tasks waiting per agent (the hour's most), ${span}`, yLabel: "tasks",
      name: "queue-depth" },
    { metric: "lock.wait_ms", agg: "p95", group_by: "type",
      caption: `Lock waits: the 95th percentile per lock type, ${span}`, yLabel: "ms",
      name: "lock-waits" },
    { metric: "llm.cost_usd", agg: "sum",
      caption: `LLM cost per hour, ${span}`, yLabel: "USD", name: "llm-cost" },
  ].map((one) => ({ ...one, chart: timeChart({ caption: one.caption, times: [], series: [],
                                                 yLabel: one.yLabel }) }));
  fill(main, title("Overview", liveMark()), tiles,
    card("Throughput and failures",
      filters([{ name: "window", label: "Window", options: WINDOWS },
               { name: "from", label: "From (or a window above)", type: "moment" },
               { name: "to", label: "To", type: "moment" }], query, { submit: "Show" }),
      range.error ? h("p", { class: "error", role: "alert", dataset: { window: "error" } },
                      `${range.error} Showing ${span}.`) : null,
      chart, lagNote),
    h("div", { class: "grid" }, recorded.map((one) =>
      h("div", { class: "card", dataset: { chart: one.name } }, one.chart))),
    h("div", { class: "grid" },
      card("Queue by agent", agentTable),
      card("Recent failures", failureTable, h("p", {}, link("/tasks?status=failed", "all failed tasks"))),
      card("Lock waits", waitTable, h("p", {}, link("/locks", "all locks")))));

  // the charts come from the task-statistics and agent-activity read models
  async function charts() {
    const start = range.start ?? Math.floor(Date.now() / 1000 / HOUR_S) * HOUR_S - (hours - 1) * HOUR_S;
    const times = Array.from({ length: hours }, (_, i) => start + i * HOUR_S);
    // every read at once: the metric charts are drawn as their answers come
    const metricCharts = Promise.all(recorded.map((one) => metricChart(one, times)));
    const [stats, activity, status] = await Promise.all([
      get("/api/v1/projections/task_stats/state",
          { prefix: "hour:", after: hourKey(start - HOUR_S), limit: hours + 1 }),
      get("/api/v1/projections/agent_activity/state", { limit: 200 }),
      get("/api/v1/projections/task_stats"),
    ]);
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
    await metricCharts;
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

// One automatic metric per hour over the window's hours (times, epoch seconds), a line
// per group; with nothing recorded (no series) the chart says so itself.
async function metricChart(one, times) {
  let answer;
  try {
    answer = await get("/api/v1/metrics", {
      name: one.metric, tags: one.tags, group_by: one.group_by, agg: one.agg, bucket: "1h",
      from: new Date(times[0] * 1000).toISOString(),
      to: new Date((times[times.length - 1] + HOUR_S) * 1000).toISOString() });
  } catch (e) {
    if (!(e instanceof ApiError && e.code === "metric_not_found")) throw e;
    answer = { groups: [] };
  }
  const groups = answer.groups.filter((g) => g.points.some((p) => p.value));
  const series = groups.slice(0, 8).map((g) => {
    const at = new Map(g.points.map((p) => [Math.floor(Date.parse(p.at) / 1000), p.value]));
    return { label: g.group || (one.group_by ? `(no ${one.group_by})` : one.metric), values: times.map((t) => at.get(t) ?? 0) };
  });
  one.chart.update(times, series);  // with no series the chart says "no data in this window"
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
