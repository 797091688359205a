// LLM calls and budgets: what the agents' model calls cost (by model, agent or day),
// each call newest first, and the token or cost budgets with their current spend.
import { get } from "../api.js";
import { action, apiForm, badge, card, fill, filters, h, link, pager, short, table, time, title } from "../ui.js";

const BY = [["model", "by model"], ["agent", "by agent"], ["day", "by day"]];

export async function render({ main, query }) {
  const by = query.get("by") || "model";
  const scope = { agent: query.get("agent") || undefined, model: query.get("model") || undefined };
  // the summary and the calls are of a window of time when one is chosen (the tiles: today)
  const span = { since: query.get("since") || undefined, until: query.get("until") || undefined };
  const today = new Date().toISOString().slice(0, 10) + "T00:00:00Z";
  const [summary, todays, calls, { budgets }] = await Promise.all([
    get("/api/v1/llm-calls/summary", { by, ...scope, ...span }),
    get("/api/v1/llm-calls/summary", { by: "day", since: today, ...scope }),
    get("/api/v1/llm-calls", { ...scope, ...span, outcome: query.get("outcome") || undefined,
                               before_id: query.get("before_id") || undefined, limit: 50 }),
    get("/api/v1/budgets"),
  ]);
  const day = todays.rows[0];
  fill(main, title("LLM calls and budgets"),
    h("div", { class: "tiles" },
      tile("Cost today (UTC)", day ? money(day.cost) : "0", day?.unpriced ? `${day.unpriced} calls unpriced` : "priced calls"),
      tile("Calls today", day ? day.calls : 0, day?.failed ? `${day.failed} failed` : "none failed"),
      tile("Tokens today", day ? day.total_tokens.toLocaleString() : 0, "prompt and completion")),
    card("Filter", filters([
      { name: "by", label: "Summary", options: BY },
      { name: "agent", label: "Agent" }, { name: "model", label: "Model" },
      { name: "outcome", label: "Calls", options: [["", "every outcome"], ["ok", "ok"], ["error", "error"], ["refused", "refused"]] },
      { name: "since", label: "From", type: "moment" },
      { name: "until", label: "Before", type: "moment" },
    ], query)),
    card(`Summary ${BY.find(([v]) => v === by)?.[1] ?? ""}`, table({
      caption: "LLM call summary",
      columns: [
        { label: by, cell: (r) => r.key ?? "(no agent)" },
        { label: "Calls", cell: (r) => r.calls, num: true },
        { label: "Prompt tokens", cell: (r) => r.prompt_tokens.toLocaleString(), num: true },
        { label: "Completion tokens", cell: (r) => r.completion_tokens.toLocaleString(), num: true },
        { label: "Cost", cell: (r) => [money(r.cost), r.unpriced ? h("div", { class: "muted" }, `${r.unpriced} unpriced`) : null], num: true },
        { label: "Failed", cell: (r) => (r.failed ? badge(String(r.failed), "bad") : 0), num: true },
        { label: "Avg latency", cell: (r) => `${Math.round(r.avg_latency_ms)} ms`, num: true },
      ],
      rows: summary.rows,
      empty: "no LLM calls recorded",
    })),
    card("Budgets", table({
      caption: "Budgets",
      columns: [
        { label: "For", cell: (b) => (b.scope === "global" ? "everything" : [`${b.scope} `, h("code", {}, b.target)]) },
        { label: "Limit", cell: (b) => `${b.metric === "cost" ? money(b.limit) : b.limit.toLocaleString() + " tokens"} a ${b.period}` },
        { label: "Used", cell: (b) => h("span", { class: "bar-cell" },
            h("meter", { min: 0, max: 1, low: 0.8, high: 0.99, optimum: 0, value: Math.min(b.ratio, 1),
                         "aria-label": `${Math.round(b.ratio * 100)}% used` }), ` ${Math.round(b.ratio * 100)}%`) },
        { label: "State", cell: (b) => [badge(b.exceeded ? "exceeded" : "within", b.exceeded ? "bad" : "ok"), " ", b.hard ? "hard" : "soft"] },
        { label: "Period ends", cell: (b) => time(b.period_end) },
        { label: "Actions", cell: (b) => action({ label: "Delete", method: "DELETE", pattern: "/api/v1/budgets/{budget_id}",
            params: { budget_id: b.id }, danger: true, name: `delete budget ${b.id}`, done: () => location.reload(),
            confirm: "Delete this budget? Tasks it holds run again." }) ?? "–" },
      ],
      rows: budgets,
      empty: "no budgets",
    }), budgetForm()),
    card("Calls, newest first", table({
      caption: "LLM calls",
      columns: [
        { label: "When", cell: (c) => time(c.at) },
        { label: "Model", cell: (c) => [c.model, h("div", { class: "muted" }, c.provider)] },
        { label: "Agent", cell: (c) => (c.agent ? link(`/agents/${encodeURIComponent(c.agent)}`, c.agent) : "–") },
        { label: "Task", cell: (c) => (c.task_id ? link(`/tasks/${c.task_id}`, short(c.task_id)) : "–") },
        { label: "Tokens", cell: (c) => `${c.prompt_tokens} + ${c.completion_tokens}`, num: true },
        { label: "Cost", cell: (c) => (c.cost == null ? "unpriced" : money(c.cost)), num: true },
        { label: "Latency", cell: (c) => `${Math.round(c.latency_ms)} ms`, num: true },
        { label: "Outcome", cell: (c) => [badge(c.outcome), c.error ? h("div", { class: "error" }, c.error.slice(0, 120)) : null] },
      ],
      rows: calls.calls,
      empty: "no calls match",
    }), pager(query, "before_id", calls.next_before_id)));
}

function money(value) {
  return value >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

function tile(label, value, note) {
  return h("div", { class: "tile" }, h("span", { class: "value" }, value),
           h("span", { class: "label" }, label), h("div", { class: "muted" }, note));
}

function budgetForm() {
  const form = apiForm({
    pattern: "/api/v1/budgets", submit: "Create budget", name: "create-budget",
    fields: [
      { name: "scope", label: "For", type: "select", options: ["agent", "model", "global"], value: "agent" },
      { name: "target", label: "Agent or model (not for global)" },
      { name: "metric", label: "Measure", type: "select", options: ["cost", "tokens"], value: "cost" },
      { name: "period", label: "Per", type: "select", options: ["day", "month"], value: "day" },
      { name: "limit", label: "Limit", type: "number", required: true, min: 0, step: "any" },
      { name: "hard", label: "Hard (refuse calls over it)", type: "checkbox", value: true },
    ],
    toBody: (v) => ({ scope: v.scope, metric: v.metric, period: v.period, limit: Number(v.limit),
                      hard: v.hard, ...(v.scope !== "global" ? { target: v.target } : {}) }),
    done: () => location.reload(),
  });
  return form ? h("details", {}, h("summary", {}, "New budget"), form) : null;
}
