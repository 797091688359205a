// Workflow runs: newest first, by workflow and status, live; the published
// workflows, and a form to start a run (operators).
import { get } from "../api.js";
import { apiForm, badge, card, every, fill, fillRows, filters, h, link, liveMark, pager, parseJson, short, table, time, title } from "../ui.js";

const STATUSES = [["", "any status"], ["running", "running"], ["succeeded", "succeeded"],
                  ["failed", "failed"], ["cancelled", "cancelled"]];

export async function render({ main, query }) {
  const params = { workflow: query.get("workflow") || undefined, status: query.get("status") || undefined,
                   before: query.get("before") || undefined, limit: 50 };
  const [first, defs] = await Promise.all([
    get("/api/v1/workflow-runs", params),
    get("/api/v1/workflows", { status: "published", limit: 100 }),
  ]);
  const columns = [
    { label: "Run", cell: (r) => link(`/workflow-runs/${r.id}`, short(r.id)) },
    { label: "Workflow", cell: (r) => [r.workflow, h("span", { class: "muted" }, ` ${r.version}`)] },
    { label: "Status", cell: (r) => badge(r.status) },
    { label: "Started", cell: (r) => [time(r.created_at), h("div", { class: "muted" }, r.created_by)] },
    { label: "Finished", cell: (r) => time(r.finished_at) },
    { label: "Parent", cell: (r) => (r.parent_run_id ? link(`/workflow-runs/${r.parent_run_id}`, short(r.parent_run_id)) : "–") },
    { label: "Error", cell: (r) => (r.error ? h("span", { class: "error" }, `${r.error.type ?? "error"}: ${r.error.message ?? ""}`.slice(0, 120)) : "") },
  ];
  const view = table({ caption: "Workflow runs, newest first", columns, rows: first.runs,
                       rowAttrs: (r) => ({ dataset: { run: r.id } }), empty: "no runs match" });
  const body = view.querySelector("tbody");
  fill(main, title("Workflow runs", params.before ? null : liveMark()),
    card("Filter", filters([{ name: "workflow", label: "Workflow" },
                            { name: "status", label: "Status", options: STATUSES }], query)),
    card("Runs, newest first", view, pager(query, "before", first.next_before)),
    card("Published workflows", table({
      caption: "Published workflows",
      columns: [
        { label: "Workflow", cell: (w) => link(`/workflow-runs?workflow=${encodeURIComponent(w.name)}`, w.name) },
        { label: "Version", cell: (w) => w.version },
        { label: "Steps", cell: (w) => w.steps.join(" → ") },
        { label: "Description", cell: (w) => w.description ?? "–" },
      ],
      rows: defs.workflows,
      empty: "no published workflow: agentos workflows import FILE --publish",
    })),
    startCard(defs.workflows));
  if (params.before) return;
  every(2000, async () => {
    const page = await get("/api/v1/workflow-runs", params);
    fillRows(body, columns, page.runs, "no runs match", (r) => ({ dataset: { run: r.id } }));
  });
}

function startCard(workflows) {
  if (!workflows.length) return null;
  const form = apiForm({
    pattern: "/api/v1/workflow-runs", submit: "Start run", name: "start-run",
    fields: [
      { name: "workflow", label: "Workflow", type: "select", options: workflows.map((w) => w.name) },
      { name: "input", label: "Input (JSON)", type: "textarea", value: "{}", rows: 4 },
    ],
    toBody: (v) => ({ workflow: v.workflow, input: parseJson(v.input, "input") ?? {} }),
    done: (run) => location.assign(`/workflow-runs/${run.id}`),
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "Start a run"), form) : null;
}
