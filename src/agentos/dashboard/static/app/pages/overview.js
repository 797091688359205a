// Overview: the state of the whole system at a glance, live.
import { get } from "../api.js";
import { ago, badge, card, every, fill, fillRows, h, link, liveMark, short, table, time, title } from "../ui.js";

export async function render({ main }) {
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
  fill(main, title("Overview", liveMark()), tiles,
    h("div", { class: "grid" },
      card("Recent failures", failureTable, h("p", {}, link("/tasks?status=failed", "all failed tasks"))),
      card("Lock waits", waitTable, h("p", {}, link("/locks", "all locks")))));

  async function refresh() {
    const [ready, { workers }, { locks }, failed, { schedules }] = await Promise.all([
      get("/ready").catch((e) => ({ status: "not ready", error: e.message })),
      get("/api/v1/workers"),
      get("/api/v1/locks"),
      get("/api/v1/tasks", { status: "failed", limit: 8 }),
      get("/api/v1/schedules"),
    ]);
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
      tile("Schedules", schedules.filter((s) => !s.paused && s.next_run_at).length, "active", null, "/schedules"));
    fillRows(failures, failureColumns, failed.tasks, "no failed task");
    fillRows(waits, waitColumns, locks.filter((l) => l.queue.length), "no one is waiting for a lock");
  }
  await refresh();
  every(3000, refresh);
}

function tile(label, value, note, tone, href) {
  const body = [h("span", { class: "value" }, value), h("span", { class: "label" }, label),
                note ? h("div", { class: "muted" }, tone ? badge(note, tone) : note) : null];
  return h("div", { class: "tile" }, href ? h("a", { href, class: "tile-link" }, body) : body);
}
