// One task: its state (and type), input, metadata and output, every attempt with its error and
// traceback, why it is not running (or why it ended), the lines its handler logged,
// cancel and retry (for operators); live until it ends.
import { get } from "../api.js";
import { causeLink, chainCard, kindsOf } from "./event.js";
import { action, append, badge, card, duration, every, facts, fill, h, json, link, messageOf, short, shortText, table, time, title } from "../ui.js";

const ONE = "/api/v1/tasks/{task_id}";
const FINAL = ["succeeded", "failed", "cancelled"];

export async function render({ main, params }) {
  const id = params.task_id;
  let task = await get(`/api/v1/tasks/${encodeURIComponent(id)}`);
  let drawn = "";
  // drawn once and kept across redraws: each follows the task by itself
  const why = explainPanel(id);
  const logs = logsPanel(id);
  async function draw() {
    const now = JSON.stringify(task);
    if (now === drawn) return;  // unchanged: keep the page (and the keyboard focus) as it is
    drawn = now;
    const nodes = task.correlation_id
      ? (await get(`/api/v1/correlations/${encodeURIComponent(task.correlation_id)}`)).tree : [];
    const chain = nodes.length ? chainCard(nodes, task.id,
      "What caused this task and what it caused, with everything else sharing its correlation id.")
      : null;
    const [head, state, attempts] = view(task, kindsOf(nodes), refresh);
    fill(main, head, why.node, state, attempts, logs.node, chain);
  }
  async function refresh() {
    task = await get(`/api/v1/tasks/${encodeURIComponent(id)}`);
    await Promise.all([draw(), why.update(), logs.update()]);
  }
  await Promise.all([why.update(), logs.update()]);
  await draw();
  let ended = FINAL.includes(task.status);
  every(1500, async () => {
    // an ended task is read no more, until Retry (its refresh) makes it live again
    if (ended && FINAL.includes(task.status)) return;
    await refresh();
    ended = FINAL.includes(task.status);  // this refresh read its last lines and why it ended
  });
}

// "Why is this not running?" (or, once it ended, why it ended): the gate that holds
// the task now and every gate's finding, from GET /api/v1/tasks/{id}/explain.
function explainPanel(id) {
  const body = h("div", { class: "stack" });
  const heading = h("h2", { id: "why-heading" }, "Why is this not running?");
  const node = h("section", { class: "card", id: "explain", "aria-labelledby": "why-heading" },
                 heading, body);
  let drawn = "";
  async function update() {
    let found;
    try {
      found = await get(`/api/v1/tasks/${encodeURIComponent(id)}/explain`);
    } catch (e) {
      fill(body, h("p", { class: "error" }, messageOf(e)));
      return;
    }
    const { checked_at: _, ...shown } = found;  // the clock alone changes nothing shown
    const now = JSON.stringify(shown);
    if (now === drawn) return;
    drawn = now;
    node.dataset.gate = found.gate ?? "";
    heading.textContent = FINAL.includes(found.status) ? "Why it ended"
      : found.status === "running" ? "What it is doing" : "Why is this not running?";
    fill(body,
      h("p", { class: "verdict" },
        FINAL.includes(found.status) || !found.gate ? badge(found.status)
          : badge(found.gate, found.status === "running" ? "run" : "warn"),
        " ", h("strong", {}, found.summary),
        found.until ? [" — lifts by itself at ", time(found.until)] : null),
      found.workflow ? h("p", {}, "Step ", h("code", {}, found.workflow.step), " of ",
                         link(`/workflow-runs/${encodeURIComponent(found.workflow.run_id)}`,
                              `run of ${found.workflow.workflow}`),
                         ` (${found.workflow.run_status})`) : null,
      table({
        caption: "What each gate found",
        columns: [
          { label: "Gate", cell: (f) => h("code", {}, f.gate) },
          { label: "Holds it", cell: (f) => (f.blocking ? badge("yes", "warn") : "no") },
          { label: "Finding", cell: (f) => f.summary },
          { label: "Until", cell: (f) => time(f.until) },
          { label: "Details", cell: (f) => (Object.keys(f.details ?? {}).length
            ? h("details", {}, h("summary", {}, "details"), json(f.details)) : "–") },
        ],
        rows: found.findings,
        rowAttrs: (f) => ({ dataset: { gate: f.gate } }),
        empty: "no finding",
      }));
  }
  return { node, update };
}

const LOG_PAGE = 1000;  // lines a request reads
const LOG_KEPT = 5000;  // lines drawn at most (the CLI and the API page through the rest)

// The lines the task's handler logged (ctx.log), attempt by attempt, from GET
// /api/v1/tasks/{id}/logs: new ones appended as they come, the rest left as they are.
function logsPanel(id) {
  const columns = [
    { label: "Attempt", cell: (l) => l.attempt, num: true },
    { label: "Line", cell: (l) => l.line, num: true },
    { label: "Time", cell: (l) => time(l.at) },
    { label: "Level", cell: (l) => badge(l.level, LEVELS[l.level]) },
    { label: "Message", cell: (l) => h("pre", { class: "log-line" }, l.message) },
  ];
  const view = table({ caption: "Log lines", columns, rows: [], empty: "no log lines yet" });
  const rows = view.querySelector("tbody");
  const more = h("p", { class: "muted" });
  const node = card("Log", view, more);
  node.id = "logs";
  let after;
  let shown = 0;
  async function update() {
    while (shown < LOG_KEPT) {
      const page = await get(`/api/v1/tasks/${encodeURIComponent(id)}/logs`,
                             { after, limit: Math.min(LOG_PAGE, LOG_KEPT - shown) });
      if (page.lines.length) {
        if (!shown) rows.replaceChildren();  // the "no log lines yet" row
        append(rows, page.lines.map((l) => h("tr", { dataset: { attempt: l.attempt, line: l.line } },
          columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(l))))));
        shown += page.lines.length;
        const last = page.lines[page.lines.length - 1];
        after = `${last.attempt}:${last.line}`;
      }
      if (!page.next_after) return;
    }
    more.textContent = `The first ${LOG_KEPT} lines are shown; agentos tasks logs ${id} prints them all.`;
  }
  return { node, update };
}

const LEVELS = { debug: undefined, info: "run", warning: "warn", error: "bad", critical: "bad",
                 stderr: "warn", truncated: "warn" };

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
        ["type", task.type ?? "–"],
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
        task.metadata && Object.keys(task.metadata).length ? card("Metadata", json(task.metadata)) : null,
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
