// An agent's live side: its state (status, queue, running tasks, locks, holds), its
// summary metrics over the last day, its config (values handlers get now; operators override and clear them) and its
// capabilities (switched off and on, with a reason).
import { get } from "../api.js";
import { action, ago, apiForm, badge, card, every, facts, fill, h, link, short, table, time, toneOf } from "../ui.js";

const STATE_TONE = { idle: "ok", busy: "run", waiting: "warn", error: "bad", disabled: "bad" };

export async function stateCard(name) {
  const body = h("div", {}, h("p", { class: "muted" }, "loading…"));
  const path = `/api/v1/agents/${encodeURIComponent(name)}/state`;
  const draw = async () => {
    const s = await get(path);
    fill(body,
      facts([
        ["status", badge(s.status, STATE_TONE[s.status])],
        ["queue", `${s.pending} waiting, ${s.scheduled} scheduled, ${s.running} running`],
        ["published", s.published_versions.join(", ") || "–"],
        ["workers", s.workers.length ? s.workers.map((w) => h("div", {}, h("span", { class: "mono" }, w.id), " ",
          badge(w.alive ? "alive" : "lost"), " ", ago(w.last_heartbeat_at))) : "no worker serves it"],
        ["holds", s.held.length ? s.held.map((hold) => h("div", {}, badge(hold.reason, "warn"), ` ${hold.ref}`,
          hold.until ? [" until ", time(hold.until)] : "")) : "–"],
        ["last error", s.last_error ? h("div", {}, link(`/tasks/${s.last_error.task_id}`, short(s.last_error.task_id)), " ",
          h("span", { class: "error" }, `${s.last_error.error?.type ?? "error"}: ${s.last_error.error?.message ?? ""}`), " ",
          ago(s.last_error.at)) : "–"],
      ]),
      s.running_tasks.length ? table({
        caption: "Running tasks",
        columns: [
          { label: "Task", cell: (t) => link(`/tasks/${t.id}`, short(t.id)) },
          { label: "Attempt", cell: (t) => t.attempt, num: true },
          { label: "Worker", cell: (t) => h("span", { class: "mono" }, t.worker_id ?? "–") },
          { label: "Since", cell: (t) => ago(t.started_at) },
        ],
        rows: s.running_tasks,
      }) : null,
      s.held_locks.length ? h("p", {}, "holds ", s.held_locks.map((l) => [h("code", {}, l.resource), " "])) : null);
  };
  await draw();
  every(3000, draw);
  return card("Live state", body);
}

// Success rate, durations, throughput, LLM use and cost over the last 24 hours, from
// the automatic metrics (GET /api/v1/agents/{name}/summary); live.
export async function summaryCard(name) {
  const body = h("div", {});
  const path = `/api/v1/agents/${encodeURIComponent(name)}/summary`;
  const ms = (v) => (v == null ? "–" : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);
  const draw = async () => {
    const m = await get(path, { window: "24h" });
    const ended = Object.entries(m.tasks).filter(([, n]) => n);
    fill(body, facts([
      ["tasks ended", ended.length ? ended.map(([outcome, n]) => [badge(`${n} ${outcome}`, toneOf(outcome)), " "]) : "none"],
      ["success rate", m.success_rate == null ? "–" : `${(m.success_rate * 100).toFixed(1)} %`],
      ["duration", `p50 ${ms(m.duration_ms.p50)} · p95 ${ms(m.duration_ms.p95)}`],
      ["throughput", `${Number(m.throughput_per_hour.toPrecision(3))} tasks an hour`],
      ["LLM calls", `${m.llm_calls}${m.unpriced_calls ? ` (${m.unpriced_calls} unpriced)` : ""}`],
      ["tokens", Object.entries(m.tokens).map(([kind, n]) => `${n.toLocaleString()} ${kind}`).join(", ") || "–"],
      ["cost", m.cost ? Number(m.cost.toPrecision(3)) : 0],
    ]));
  };
  await draw();
  every(10000, draw);
  return h("section", { class: "card", "aria-labelledby": "summary-title", id: "summary" },
           h("h2", { id: "summary-title" }, "The last 24 hours"), body);
}

export async function configCard(name) {
  const path = `/api/v1/agents/${encodeURIComponent(name)}/config`;
  const { config, version } = await get(path);
  const reload = () => location.reload();
  return card(`Config (as declared by ${version})`, table({
    caption: "Config",
    columns: [
      { label: "Key", cell: (c) => [h("code", {}, c.key), c.description ? h("div", { class: "muted" }, c.description) : null] },
      { label: "Type", cell: (c) => [c.type, bounds(c)] },
      { label: "Value now", cell: (c) => [h("code", {}, JSON.stringify(c.value)),
        c.overridden ? h("div", { class: "muted" }, "set by ", c.override.updated_by, " ", ago(c.override.updated_at)) : h("div", { class: "muted" }, "the default")] },
      { label: "Change", cell: (c) => h("div", {}, valueForm(name, c, reload),
        c.overridden ? action({ label: "Clear", method: "DELETE", pattern: "/api/v1/agents/{name}/config/{key}",
          params: { name, key: c.key }, name: `clear ${c.key}`, done: reload }) : null) },
    ],
    rows: config,
    empty: "this version declares no config",
  }));
}

function bounds(c) {
  const parts = [c.min != null ? `≥ ${c.min}` : null, c.max != null ? `≤ ${c.max}` : null,
                 c.choices ? `one of ${c.choices.map((x) => JSON.stringify(x)).join(", ")}` : null].filter(Boolean);
  return parts.length ? h("div", { class: "muted" }, parts.join(", ")) : null;
}

function valueForm(name, c, done) {
  const field = c.type === "boolean"
    ? { name: "value", label: h("span", { class: "visually-hidden" }, `New value of ${c.key}`), type: "select", options: ["true", "false"], value: String(c.value) }
    : c.choices
      ? { name: "value", label: h("span", { class: "visually-hidden" }, `New value of ${c.key}`), type: "select", options: c.choices.map(String), value: String(c.value) }
      : { name: "value", label: h("span", { class: "visually-hidden" }, `New value of ${c.key}`),
          value: c.type === "string" ? c.value ?? "" : JSON.stringify(c.value) };
  return apiForm({
    method: "PUT", pattern: "/api/v1/agents/{name}/config/{key}", params: { name, key: c.key },
    inline: true, submit: "Set", name: `set ${c.key}`, fields: [field],
    toBody: (v) => ({ value: typed(c, v.value) }), done,
  });
}

function typed(c, text) {
  if (c.type === "string") return c.choices ? c.choices.find((x) => String(x) === text) ?? text : text;
  if (c.type === "boolean") return text === "true";
  if (c.type === "integer" || c.type === "float") {
    const n = Number(text);
    if (text.trim() === "" || Number.isNaN(n)) throw new Error(`${c.key} needs a number`);
    return n;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${c.key} needs JSON: ${e.message}`);
  }
}

export async function capabilitiesCard(name) {
  const { capabilities } = await get(`/api/v1/agents/${encodeURIComponent(name)}/capabilities`);
  const reload = () => location.reload();
  const base = "/api/v1/agents/{name}/capabilities/{capability}";
  return card("Capabilities", table({
    caption: "Capabilities",
    columns: [
      { label: "Capability", cell: (c) => [h("code", {}, c.name), ` ${c.version}`, c.description ? h("div", { class: "muted" }, c.description) : null] },
      { label: "Now", cell: (c) => badge(c.enabled ? "enabled" : "disabled", c.enabled ? "ok" : "bad") },
      { label: "Switched", cell: (c) => (c.switch ? [c.switch.updated_by, " ", ago(c.switch.updated_at),
          c.switch.reason ? h("div", { class: "muted" }, c.switch.reason) : null] : "as declared") },
      { label: "Actions", cell: (c) => (c.enabled
        ? action({ label: "Disable", pattern: `${base}/disable`, params: { name, capability: c.name }, danger: true,
                   name: `disable ${c.name}`, done: reload, body: () => ({ reason: askReason(c.name) }) })
        : action({ label: "Enable", pattern: `${base}/enable`, params: { name, capability: c.name },
                   name: `enable ${c.name}`, done: reload, body: {} })) ?? "–" },
    ],
    rows: capabilities,
    empty: "this version declares no capabilities",
  }));
}

function askReason(capability) {
  const reason = window.prompt(`Why switch ${capability} off? Its triggers stop firing and tasks needing it wait.`);
  if (!reason) throw new Error("a reason is needed to disable a capability");
  return reason;
}


