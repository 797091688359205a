// One agent: its versions (with the lifecycle buttons the role allows), the
// definition as YAML, its triggers and handler, and the tasks it ran.
import { get } from "../api.js";
import { routeExplainCard } from "../explain.js";
import { capabilitiesCard, configCard, stateCard, summaryCard } from "./agent_live.js";
import { action, badge, card, facts, fill, h, json, link, short, table, time, title } from "../ui.js";

const VERSION = "/api/v1/agents/{name}/versions/{version}";

export async function render({ main, params, query }) {
  const name = params.name;
  const chosen = query.get("version");
  const [current, { versions }] = await Promise.all([
    get(`/api/v1/agents/${encodeURIComponent(name)}`),
    get(`/api/v1/agents/${encodeURIComponent(name)}/versions`),
  ]);
  const shown = chosen && chosen !== current.version
    ? await get(`/api/v1/agents/${encodeURIComponent(name)}/versions/${encodeURIComponent(chosen)}`)
    : current;
  const [yaml, recent] = await Promise.all([
    get(`/api/v1/agents/${encodeURIComponent(name)}/export`, { version: shown.version },
        { text: true }),
    get("/api/v1/tasks", { agent: name, order: "desc", limit: 10 }),
  ]);
  const reload = () => location.reload();
  const d = shown.definition;
  const live = await Promise.all([configCard(name), capabilitiesCard(name), stateCard(name),
                                  summaryCard(name)]
    .map((made) => made.catch((e) => card("Unavailable", h("p", { class: "error" }, e.message)))));
  fill(main,
    title(`${d.display_name || name}`, badge(shown.status), h("span", { class: "mono" }, shown.version)),
    h("div", { class: "grid" },
      card("About", facts([
        ["name", h("span", { class: "mono" }, name)],
        ["version", shown.version],
        ["description", d.description],
        ["role", d.role],
        ["owner", d.owner],
        ["tags", (d.tags ?? []).join(", ") || "–"],
        ["capabilities", (d.capabilities ?? []).map((c) => `${c.name}${c.version ? ` ${c.version}` : ""}`).join(", ") || "–"],
        ["handler", d.handler ? handler(d.handler) : "–"],
        ["model", d.model ? `${d.model.provider} ${d.model.name}` : null],
        ["resources", (d.resources ?? []).join(", ") || null],
        ["concurrency", d.limits?.concurrency ?? "unlimited"],
        ["retries", d.limits?.max_retries],
        ["timeout", d.limits?.timeout_s != null ? `${d.limits.timeout_s} s` : null],
        ["tasks", link(`/tasks?agent=${encodeURIComponent(name)}`, "tasks of this agent")],
        ["published", time(shown.published_at)],
      ])),
      card("Versions", table({
        caption: "Versions",
        columns: [
          { label: "Version", cell: (v) => link(`?version=${encodeURIComponent(v.version)}`, v.version) },
          { label: "Status", cell: (v) => badge(v.status) },
          { label: "Updated", cell: (v) => time(v.updated_at) },
          { label: "Actions", cell: (v) => lifecycle(name, v, reload) },
        ],
        rows: versions,
      }))),
    h("div", { class: "grid" }, live[2], live[3], live[1]),
    live[0],
    card("Triggers", table({
      caption: "Triggers",
      columns: [
        { label: "Event type", cell: (t) => h("code", {}, t.event) },
        { label: "Payload filter", cell: (t) => (Object.keys(t.filter ?? {}).length ? json(t.filter) : "–") },
        { label: "Capability", cell: (t) => t.capability ?? "–" },
        { label: "Priority", cell: (t) => t.priority ?? "–", num: true },
      ],
      rows: d.triggers ?? [],
      empty: "no triggers: tasks reach this agent only when submitted",
    })),
    routeExplainCard({ agent: name }),
    card("Recent tasks", table({
      caption: "Recent tasks",
      columns: [
        { label: "Task", cell: (t) => link(`/tasks/${t.id}`, short(t.id)) },
        { label: "Status", cell: (t) => badge(t.status) },
        { label: "Version", cell: (t) => t.version },
        { label: "Created", cell: (t) => time(t.created_at) },
        { label: "Error", cell: (t) => (t.error ? h("span", { class: "error" }, `${t.error.type}: ${t.error.message ?? ""}`.slice(0, 120)) : "") },
      ],
      rows: recent.tasks,
      empty: "no task of this agent yet",
    }), h("p", {}, link(`/tasks?agent=${encodeURIComponent(name)}`, "all its tasks"))),
    card("Definition (YAML)", h("pre", { tabindex: "0", "aria-label": "definition" }, yaml)));
}

function handler(spec) {
  const what = { python: spec.target, command: (spec.argv ?? []).join(" "), http: spec.url,
                 llm: spec.model ? `${spec.model.provider} ${spec.model.name}` : "the agent's model" };
  return [h("span", { class: "badge" }, spec.type), " ", h("code", {}, what[spec.type] ?? "")];
}

function lifecycle(name, v, done) {
  const params = { name, version: v.version };
  const buttons = [];
  if (v.status === "draft" || v.status === "deprecated") {
    buttons.push(action({ label: "Publish", pattern: `${VERSION}/publish`, params, done }));
  }
  if (v.status === "published") {
    buttons.push(action({ label: "Deprecate", pattern: `${VERSION}/deprecate`, params, done,
                          confirm: `Deprecate ${name} ${v.version}? It stops being routed to.` }));
  }
  if (v.status === "deprecated") {
    buttons.push(action({ label: "Archive", pattern: `${VERSION}/archive`, params, done,
                          confirm: `Archive ${name} ${v.version} for good?` }));
  }
  if (v.status === "draft") {
    buttons.push(action({ label: "Delete draft", method: "DELETE", pattern: VERSION, params,
                          danger: true, done, confirm: `Delete the draft ${name} ${v.version}?` }));
  }
  const shown = buttons.filter(Boolean);
  return shown.length ? h("div", { class: "title-row" }, shown) : "–";
}
