// Tasks: newest first, filtered by agent, status, type and created time, live on the first page;
// operators submit from here.
import { get } from "../api.js";
import { apiForm, badge, card, every, fill, fillRows, filters, h, link, liveMark, pager, parseJson, short, table, time, title } from "../ui.js";

export const STATUSES = ["pending", "scheduled", "running", "succeeded", "failed", "cancelled"];
const PAGE = 50;

export async function render({ main, query }) {
  const agent = query.get("agent") || undefined;
  const status = query.get("status") || undefined;
  const type = query.get("type") || undefined;
  const since = query.get("since") || undefined;
  const until = query.get("until") || undefined;
  const before = query.get("before_seq") || undefined;
  const columns = [
    { label: "Task", cell: (t) => link(`/tasks/${t.id}`, short(t.id)) },
    { label: "Agent", cell: (t) => link(`/agents/${encodeURIComponent(t.agent)}`, t.agent) },
    { label: "Type", cell: (t) => t.type ?? "–" },
    { label: "Status", cell: (t) => [badge(t.status), t.cancel_requested && t.status === "running" ? [" ", badge("cancelling", "warn")] : null] },
    { label: "Priority", cell: (t) => t.priority, num: true },
    { label: "Attempt", cell: (t) => t.attempt, num: true },
    { label: "Created", cell: (t) => time(t.created_at) },
    { label: "Finished", cell: (t) => time(t.finished_at) },
    { label: "Error", cell: (t) => (t.error ? h("span", { class: "error" }, `${t.error.type}: ${t.error.message ?? ""}`.slice(0, 140)) : "") },
  ];
  const load = () => get("/api/v1/tasks", { agent, status, type, since, until, order: "desc",
                                            before_seq: before, limit: PAGE });
  const first = await load();
  const view = table({ caption: "Tasks, newest first", columns, rows: first.tasks,
                       rowAttrs: (t) => ({ dataset: { task: t.id, status: t.status } }),
                       empty: "no tasks match" });
  const body = view.querySelector("tbody");
  const next = h("div", {}, pager(query, "before_seq", first.next_before_seq));
  fill(main,
    title("Tasks", before ? null : liveMark()),
    card("Filter", filters([
      { name: "agent", label: "Agent" },
      { name: "status", label: "Status", options: [["", "any status"], ...STATUSES.map((s) => [s, s])] },
      { name: "type", label: "Type" },
      { name: "since", label: "Created from", type: "moment" },
      { name: "until", label: "Created before", type: "moment" },
    ], query)),
    card(before ? "Older tasks" : "Newest first", view, next),
    submitCard());
  if (before) return;
  every(2000, async () => {
    const page = await load();
    fillRows(body, columns, page.tasks, "no tasks match",
             (t) => ({ dataset: { task: t.id, status: t.status } }));
    fill(next, pager(query, "before_seq", page.next_before_seq));
  });
}

function submitCard() {
  const form = apiForm({
    pattern: "/api/v1/tasks", submit: "Submit task", name: "submit-task",
    fields: [
      { name: "agent", label: "Agent", required: true },
      { name: "input", label: "Input (JSON)", type: "textarea", value: "{}", rows: 4 },
      { name: "priority", label: "Priority (1–10)", type: "number", value: "5", min: 1, max: 10 },
      { name: "max_retries", label: "Retries (empty: the agent's)", type: "number", min: 0, max: 100 },
    ],
    toBody: (v) => ({ agent: v.agent, input: parseJson(v.input, "input") ?? {},
                      priority: Number(v.priority),
                      ...(v.max_retries !== "" ? { max_retries: Number(v.max_retries) } : {}) }),
    done: (task) => { location.assign(`/tasks/${task.id}`); },
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "Submit a task"), form) : null;
}
