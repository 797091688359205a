// One task: its state, input and output, every attempt with its error and
// traceback, cancel and retry (for operators); live until it ends.
import { get } from "../api.js";
import { causeLink, chainCard, kindsOf } from "./event.js";
import { action, badge, card, duration, every, facts, fill, h, json, link, short, shortText, table, time, title } from "../ui.js";

const ONE = "/api/v1/tasks/{task_id}";
const FINAL = ["succeeded", "failed", "cancelled"];

export async function render({ main, params }) {
  const id = params.task_id;
  let task = await get(`/api/v1/tasks/${encodeURIComponent(id)}`);
  let drawn = "";
  async function draw() {
    const now = JSON.stringify(task);
    if (now === drawn) return;  // unchanged: keep the page (and the keyboard focus) as it is
    drawn = now;
    const nodes = task.correlation_id
      ? (await get(`/api/v1/correlations/${encodeURIComponent(task.correlation_id)}`)).tree : [];
    const chain = nodes.length ? chainCard(nodes, task.id,
      "What caused this task and what it caused, with everything else sharing its correlation id.")
      : null;
    fill(main, ...view(task, kindsOf(nodes), refresh), chain);
  }
  async function refresh() {
    task = await get(`/api/v1/tasks/${encodeURIComponent(id)}`);
    await draw();
  }
  await draw();
  every(1500, async () => {
    if (!FINAL.includes(task.status)) await refresh();
  });
}

function view(task, kinds, refresh) {
  const params = { task_id: task.id };
  const actions = [
    ["pending", "scheduled", "running"].includes(task.status) && !task.cancel_requested
      ? action({ label: "Cancel", pattern: `${ONE}/cancel`, params, danger: true, done: refresh,
                 confirm: `Cancel task ${task.id}?` }) : null,
    ["failed", "cancelled"].includes(task.status)
      ? action({ label: "Retry", pattern: `${ONE}/retry`, params, primary: true, done: refresh }) : null,
  ];
  return [
    title(`Task ${shortText(task.id)}`, badge(task.status),
          task.cancel_requested && task.status === "running" ? badge("cancel requested", "warn") : null,
          ...actions),
    h("div", { class: "grid" },
      card("State", facts([
        ["id", h("span", { class: "mono" }, task.id)],
        ["agent", [link(`/agents/${encodeURIComponent(task.agent)}`, task.agent), ` ${task.version}`]],
        ["status", badge(task.status)],
        ["attempt", task.attempt],
        ["retries", `${task.max_retries} after a failure`],
        ["priority", task.priority],
        ["timeout", `${task.timeout_s} s`],
        ["created", time(task.created_at)],
        ["runs at", time(task.run_at)],
        ["started", time(task.started_at)],
        ["finished", time(task.finished_at)],
        ["worker", task.worker_id ? h("span", { class: "mono" }, task.worker_id) : "–"],
        ["lease until", time(task.lease_expires_at)],
        ["correlation", task.correlation_id ? link(`/events?correlation_id=${encodeURIComponent(task.correlation_id)}`, short(task.correlation_id)) : "–"],
        ["caused by", task.causation_id ? causeLink(task.causation_id, kinds) : "–"],
        ["idempotency key", task.idempotency_key],
      ])),
      h("div", { class: "stack" },
        card("Input", json(task.input)),
        task.output != null ? card("Output", json(task.output)) : null,
        task.error ? card("Error", errorView(task.error)) : null)),
    card("Attempts", table({
      caption: "Attempts",
      columns: [
        { label: "#", cell: (a) => a.number, num: true },
        { label: "Outcome", cell: (a) => badge(a.outcome) },
        { label: "Worker", cell: (a) => (a.worker_id ? h("span", { class: "mono" }, a.worker_id) : "–") },
        { label: "Started", cell: (a) => time(a.started_at) },
        { label: "Ended", cell: (a) => time(a.ended_at) },
        { label: "Took", cell: (a) => duration(a.duration_ms), num: true },
        { label: "Tokens", cell: (a) => (a.tokens ? Object.entries(a.tokens).map(([k, v]) => `${k} ${v}`).join(", ") : "–") },
        { label: "Cost", cell: (a) => (a.cost != null ? a.cost.toFixed(4) : "–"), num: true },
        { label: "Error", cell: (a) => (a.error ? errorView(a.error) : "–") },
      ],
      rows: task.attempts ?? [],
      empty: "no attempt yet",
    })),
  ];
}

export function errorView(error) {
  return h("div", { class: "error-view" },
    h("div", { class: "error" }, h("strong", {}, error.type ?? "error"), ": ", error.message ?? ""),
    error.traceback ? h("details", {}, h("summary", {}, "traceback"), h("pre", {}, error.traceback)) : null);
}
