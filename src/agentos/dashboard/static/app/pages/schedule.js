// One schedule: when it fires and what, pause and resume for admins, and its last
// fires (newest first, paged), each with the event and the task it made; live.
import { get } from "../api.js";
import { action, ago, badge, card, every, facts, fill, fillRows, h, json, link, liveMark, pager, short, table, time, title } from "../ui.js";
import { fires as firesWhat, when } from "./schedules.js";

const ONE = "/api/v1/schedules/{name}";
const PAGE = 50;

export async function render({ main, params, query }) {
  const name = params.schedule;
  const path = `/api/v1/schedules/${encodeURIComponent(name)}`;
  const before = query.get("before") || undefined;
  const head = h("div");
  const about = h("div");
  const body = h("tbody");
  const more = h("div");
  const columns = [
    { label: "Fired", cell: (f) => [time(f.fired_at), h("div", { class: "muted" }, ago(f.fired_at))] },
    { label: "Tick", cell: (f) => time(f.scheduled_for) },
    { label: "Late", cell: (f) => late(f) },
    { label: "Event", cell: (f) => (f.event_id ? link(`/events/${f.event_id}`, short(f.event_id)) : "–") },
    { label: "Task", cell: (f) => (f.task_id ? link(`/tasks/${f.task_id}`, short(f.task_id)) : "–") },
    { label: "Error", cell: (f) => (f.error ? h("span", { class: "error" }, f.error.message ?? f.error.code) : "–") },
  ];
  const view = table({ caption: "Last fires", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, head, about,
    card("Last fires", h("p", { class: "muted" }, "Each tick it fired, newest first, with what it made."),
         view, more));
  let drawn = "";
  const draw = async () => {
    const [s, page] = await Promise.all([get(path), get(`${path}/fires`, { before, limit: PAGE })]);
    fillRows(body, columns, page.fires, "it has not fired yet", (f) => ({ dataset: { fire: f.id } }));
    fill(more, pager(query, "before", page.next_before));
    const now = JSON.stringify(s);
    if (now === drawn) return;
    drawn = now;
    fill(head, title(s.name, badge(s.paused ? "paused" : s.next_run_at ? "active" : "done"), liveMark(),
      (s.paused
        ? action({ label: "Resume", pattern: `${ONE}/resume`, params: { name }, done: draw })
        : action({ label: "Pause", pattern: `${ONE}/pause`, params: { name }, done: draw }))));
    fill(about, card("Schedule", facts([
      ["when", when(s)],
      ["fires", firesWhat(s)],
      ["next fire", s.paused ? "paused" : s.next_run_at ? [time(s.next_run_at), " (", ago(s.next_run_at), ")"] : "none"],
      ["after downtime", s.misfire === "once" ? "one catch-up fire" : "skips the missed ticks"],
      ["fired", `${s.fire_count} times`],
      ["task input", s.task ? json(s.task.input ?? {}) : null],
      ["event payload", s.event ? json(s.event.payload ?? {}) : null],
      ["created", time(s.created_at)],
    ])));
  };
  await draw();
  if (!before) every(3000, draw);
}

function late(f) {
  if (!f.catch_up && !f.missed) return "on time";
  return [f.catch_up ? badge("catch-up", "warn") : null,
          f.missed ? h("div", { class: "muted" }, `${f.missed} missed before it`) : null];
}
