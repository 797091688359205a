// One workflow run: its steps drawn as a DAG with each step's state, live; each
// step's first tasks (the run's detail is bounded: a step's count says how many more)
// and output; what it waits for; its artifacts (a JSON time series drawn
// as a chart) and transitions; cancel and rerun from a failed step (operators).
import { get } from "../api.js";
import { timeChart } from "../charts.js";
import { drawGraph } from "../graph.js";
import { action, badge, card, every, facts, fill, h, json, link, short, shortText, table, time, title, toneOf } from "../ui.js";

const ONE = "/api/v1/workflow-runs/{run_id}";
const FINAL = ["succeeded", "failed", "cancelled"];
const CHART_MAX_BYTES = 2 * 1024 * 1024;  // larger JSON artifacts are only linked
const TIME_KEYS = ["time", "at"];
const fetched = new Map();  // artifact (run, name, stored at) -> its JSON, read once

export async function render({ main, params }) {
  const id = params.run_id;
  const path = `/api/v1/workflow-runs/${encodeURIComponent(id)}`;
  let drawn = "";
  let graph;
  async function draw() {
    const [run, why, { artifacts }] = await Promise.all([
      get(path), get(`${path}/explain`), get(`${path}/artifacts`)]);
    const now = JSON.stringify([run, why, artifacts]);
    if (now === drawn) return run;  // unchanged: keep the page (and the keyboard focus)
    drawn = now;
    const signature = JSON.stringify(run.steps.map((s) => [s.id, s.status]));
    const dag = h("div", { class: "graph", role: "img",
                           "aria-label": `the run's ${run.steps.length} steps as a graph; the table below has the same` });
    fill(main, ...view(run, why, artifacts, dag, refresh));
    if (graph?.signature !== signature || !graph) {
      graph = { signature };
    }
    await drawGraph(dag, run.steps.map((s) => ({
      id: s.id, label: `${s.id}\n${s.type === "agent" ? s.agent ?? "" : s.type} · ${s.status}${s.items ? ` ${s.items.ended ?? 0}/${s.items.total}` : ""}`,
      tone: toneOf(s.status),
    })), run.steps.flatMap((s) => s.depends_on.map((d) => ({ from: d, to: s.id }))), { direction: "LR" });
    return run;
  }
  // after an action (a rerun makes a failed run run again) the page follows it anew
  async function refresh() { current = await draw(); }
  let current = await draw();
  every(1500, async () => {
    if (FINAL.includes(current.status)) return;
    current = await draw();
  });
}

function view(run, why, artifacts, dag, refresh) {
  const failed = run.steps.filter((s) => s.status === "failed");
  return [
    title(`Run ${shortText(run.id)}`, badge(run.status),
      run.status === "running" ? action({ label: "Cancel", pattern: `${ONE}/cancel`, params: { run_id: run.id },
        danger: true, confirm: "Cancel this run and its running tasks?", done: refresh }) : null,
      ...failed.map((s) => action({ label: `Rerun from ${s.id}`, pattern: `${ONE}/rerun`, name: `rerun ${s.id}`,
        params: { run_id: run.id }, body: { step: s.id }, primary: true, done: refresh }))),
    h("div", { class: "grid" },
      card("Run", facts([
        ["workflow", `${run.workflow} ${run.version}`],
        ["status", badge(run.status)],
        ["started", [time(run.created_at), ` by ${run.created_by}`]],
        ["finished", time(run.finished_at)],
        ["correlation", link(`/events?correlation_id=${encodeURIComponent(run.correlation_id)}`, short(run.correlation_id))],
        ["parent", run.parent_run_id ? link(`/workflow-runs/${run.parent_run_id}`, `${short(run.parent_run_id).textContent} (${run.parent_step})`) : null],
        ["now", why.summary],
        ["error", run.error ? h("span", { class: "error" }, `${run.error.type ?? "error"}: ${run.error.message ?? ""}`) : null],
      ].filter(([, v]) => v != null))),
      card("Input", json(run.input)),
      run.output != null ? card("Output", json(run.output)) : null),
    waitingCard(why),
    card("Steps", dag, table({
      caption: "Steps",
      columns: [
        { label: "Step", cell: (s) => [h("code", {}, s.id), h("div", { class: "muted" }, s.type === "agent" ? s.agent : s.type)] },
        { label: "Status", cell: (s) => [badge(s.status), s.round > 1 ? h("div", { class: "muted" }, `round ${s.round}`) : null] },
        { label: "After", cell: (s) => s.depends_on.join(", ") || "–" },
        { label: "Progress", cell: (s) => (s.items ? `${s.items.ended ?? 0} of ${s.items.total} ended${s.items.failed ? `, ${s.items.failed} failed` : ""}` : "–") },
        { label: "Tasks", cell: (s) => (s.tasks.length ? [...s.tasks.map((t) => h("div", {},
            link(`/tasks/${t.task_id}`, short(t.task_id)), " ", badge(t.status))),
          s.tasks_total > s.tasks.length ? h("div", { class: "muted" }, `and ${s.tasks_total - s.tasks.length} more`) : null]
          : stepLink({ ...s, run_id: run.id })) },
        { label: "Output", cell: (s) => (s.output != null ? h("code", { class: "payload" }, JSON.stringify(s.output).slice(0, 200)) : "–") },
        { label: "Error", cell: (s) => (s.error ? h("span", { class: "error" }, `${s.error.type ?? "error"}: ${s.error.message ?? ""}`.slice(0, 160)) : "") },
        { label: "Took", cell: (s) => [time(s.started_at), s.finished_at ? [" → ", time(s.finished_at)] : null] },
      ],
      rows: run.steps,
      rowAttrs: (s) => ({ dataset: { step: s.id, status: s.status } }),
    })),
    artifacts.length ? card("Artifacts", table({
      caption: "Artifacts",
      columns: [
        { label: "Name", cell: (a) => h("a", { href: `/api/v1/workflow-runs/${encodeURIComponent(run.id)}/artifacts/${encodeURIComponent(a.name)}` }, a.name) },
        { label: "Step", cell: (a) => a.step ?? "–" },
        { label: "Kind", cell: (a) => a.kind },
        { label: "Size", cell: (a) => `${a.size} bytes`, num: true },
        { label: "Stored", cell: (a) => time(a.created_at) },
      ],
      rows: artifacts,
    }), charts(run, artifacts)) : null,
    card("Transitions", table({
      caption: "Transitions",
      columns: [
        { label: "When", cell: (t) => time(t.at) },
        { label: "Step", cell: (t) => (t.step ? h("code", {}, t.step) : "the run") },
        { label: "From", cell: (t) => t.from ?? t.from_ ?? "–" },
        { label: "To", cell: (t) => badge(t.to) },
        { label: "Why", cell: (t) => t.reason ?? "" },
      ],
      rows: run.transitions,
    }), run.transitions_more ? h("p", { class: "muted" }, `the latest ${run.transitions.length} transitions`) : null),
  ];
}

// What each running step waits for (GET .../explain): an approval, an event, a
// sub-run, or its tasks, each with the gate that holds it (the task's own explain).
function waitingCard(why) {
  if (!why.waiting?.length) return null;
  const node = card("What it waits for", table({
    caption: "What each running step waits for",
    columns: [
      { label: "Step", cell: (w) => h("code", {}, w.step) },
      { label: "Waits for", cell: (w) => w.summary },
      { label: "Tasks", cell: (w) => (w.tasks?.length ? w.tasks.map((t) => h("div", {},
          link(`/tasks/${t.task_id}`, short(t.task_id)), " ",
          t.explain.gate ? badge(t.explain.gate, "warn") : badge(t.explain.status), " ",
          t.explain.why)) : "–") },
    ],
    rows: why.waiting,
    rowAttrs: (w) => ({ dataset: { waiting: w.step } }),
  }));
  node.id = "waiting";
  return node;
}

function stepLink(s) {
  if (s.approval_id) return link(`/approvals?status=&run_id=${encodeURIComponent(s.run_id ?? "")}`, "the approval");
  if (s.sub_run_id) return link(`/workflow-runs/${s.sub_run_id}`, "the sub-run");
  return "–";
}

// Each JSON artifact that is a time series — a list of at least two objects, each a
// "time" (or "at") moment and numbers only — drawn as a chart under the table.
function charts(run, artifacts) {
  const box = h("div", { class: "artifact-charts" });
  for (const a of artifacts.filter((a) => a.kind === "json" && a.size <= CHART_MAX_BYTES)) {
    const key = JSON.stringify([run.id, a.name, a.created_at]);
    if (!fetched.has(key)) {
      fetched.set(key, get(`/api/v1/workflow-runs/${encodeURIComponent(run.id)}/artifacts/${encodeURIComponent(a.name)}`)
        .catch(() => null));
    }
    fetched.get(key).then((value) => {
      const found = series(value);
      if (found) box.append(timeChart({ caption: `${a.name} (artifact of ${a.step ?? "the run"})`, ...found }));
    });
  }
  return box;
}

function series(value) {
  if (!Array.isArray(value) || value.length < 2) return null;
  const first = value[0];
  if (first === null || typeof first !== "object" || Array.isArray(first)) return null;
  const at = TIME_KEYS.find((k) => typeof first[k] === "string");
  const names = Object.keys(first).filter((k) => k !== at);
  if (!at || !names.length) return null;
  const times = [];
  for (const item of value) {
    const moment = item && typeof item === "object" ? Date.parse(item[at]) : NaN;
    if (Number.isNaN(moment) || Object.keys(item).length !== names.length + 1 ||
        names.some((k) => typeof item[k] !== "number")) return null;
    times.push(moment / 1000);
  }
  return { times, series: names.map((k) => ({ label: k, values: value.map((item) => item[k]) })) };
}
