// Schedules: what each fires and when next, its last fire (its page lists them all);
// admins pause and resume.
import { get } from "../api.js";
import { action, ago, apiForm, badge, card, every, fill, fillRows, h, link, liveMark, parseJson, short, table, time, title } from "../ui.js";

const ONE = "/api/v1/schedules/{name}";

export async function render({ main }) {
  const body = h("tbody");
  const columns = [
    { label: "Name", cell: (s) => link(`/schedules/${encodeURIComponent(s.name)}`, h("span", { class: "mono" }, s.name)) },
    { label: "When", cell: (s) => when(s) },
    { label: "Fires", cell: (s) => fires(s) },
    { label: "State", cell: (s) => badge(s.paused ? "paused" : s.next_run_at ? "active" : "done") },
    { label: "Next fire", cell: (s) => (s.paused ? "–" : s.next_run_at ? [time(s.next_run_at), h("div", { class: "muted" }, ago(s.next_run_at))] : "–") },
    { label: "Last fire", cell: (s) => last(s) },
    { label: "Fired", cell: (s) => s.fire_count, num: true },
    { label: "Actions", cell: (s) => (s.paused
        ? action({ label: "Resume", pattern: `${ONE}/resume`, params: { name: s.name }, name: `resume ${s.name}`, done: () => refresh() })
        : action({ label: "Pause", pattern: `${ONE}/pause`, params: { name: s.name }, name: `pause ${s.name}`, done: () => refresh() })) ?? "–" },
  ];
  const view = table({ caption: "Schedules", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, title("Schedules", liveMark()), card("Schedules", view), createCard(() => refresh()));
  async function refresh() {
    const { schedules } = await get("/api/v1/schedules");
    fillRows(body, columns, schedules,
             "no schedules: `agentos schedules create NAME --cron '0 2 * * *' --event qa.nightly`");
  }
  await refresh();
  every(5000, refresh);
}

export function when(s) {
  if (s.kind === "cron") return [h("code", {}, s.cron), h("div", { class: "muted" }, s.timezone)];
  if (s.kind === "interval") return `every ${s.interval_s} s`;
  return ["once at ", time(s.at)];
}

export function fires(s) {
  return [s.event ? h("div", {}, "event ", h("code", {}, s.event.type)) : null,
          s.task ? h("div", {}, "task for ", link(`/agents/${encodeURIComponent(s.task.agent)}`, s.task.agent)) : null];
}

function last(s) {
  if (!s.last_run_at) return "never";
  const all = h("div", {}, link(`/schedules/${encodeURIComponent(s.name)}`, "its last fires"));
  return [time(s.last_run_at), all,
          s.last_event_id ? h("div", {}, "event ", link(`/events/${s.last_event_id}`, short(s.last_event_id))) : null,
          s.last_task_id ? h("div", {}, "task ", link(`/tasks/${s.last_task_id}`, short(s.last_task_id))) : null,
          s.last_error ? h("div", { class: "error" }, s.last_error.message ?? s.last_error.code) : null];
}

function createCard(done) {
  const form = apiForm({
    pattern: "/api/v1/schedules", submit: "Create schedule", name: "create-schedule",
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "cron", label: "Cron (or an interval below)", placeholder: "0 2 * * *" },
      { name: "timezone", label: "Time zone of the cron", placeholder: "Europe/Paris" },
      { name: "interval_s", label: "Every (seconds)", type: "number", min: 1 },
      { name: "event_type", label: "Event type to fire", placeholder: "qa.nightly" },
      { name: "payload", label: "Event payload (JSON)", type: "textarea", value: "{}", rows: 3 },
      { name: "agent", label: "Agent to run a task of (optional)" },
    ],
    toBody: (v) => ({
      name: v.name,
      ...(v.cron ? { cron: v.cron } : {}), ...(v.timezone ? { timezone: v.timezone } : {}),
      ...(v.interval_s ? { interval_s: Number(v.interval_s) } : {}),
      ...(v.event_type ? { event: { type: v.event_type, payload: parseJson(v.payload, "payload") ?? {} } } : {}),
      ...(v.agent ? { task: { agent: v.agent } } : {}),
    }),
    done: (_, f) => { f.reset(); return done(); },
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "New schedule"), form) : null;
}
