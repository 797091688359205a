// Models: the registry of ML models by version and status.
import { get } from "../api.js";
import { badge, card, fill, filters, h, link, pager, table, time, title } from "../ui.js";

const STATUSES = [["", "any status"], ["training", "training"], ["deployed", "deployed"],
                  ["archived", "archived"]];

export async function render({ main, query }) {
  const found = await get("/api/v1/models", {
    name: query.get("name"), status: query.get("status"), type: query.get("type"),
    after: query.get("after"), limit: 50,
  });
  fill(main, title("Models"),
    card("Filter", filters([{ name: "name", label: "Name" },
                            { name: "status", label: "Status", options: STATUSES },
                            { name: "type", label: "Type", placeholder: "classifier" }], query)),
    card("Versions", table({
      caption: "Model versions",
      columns: [
        { label: "Model", cell: (m) => link(`/models/${encodeURIComponent(m.name)}`, m.name) },
        { label: "Version", cell: (m) => h("span", { class: "mono" }, m.version) },
        { label: "Status", cell: (m) => badge(m.status) },
        { label: "Type", cell: (m) => m.type },
        { label: "Framework", cell: (m) => m.framework ?? "–" },
        { label: "Metrics", cell: (m) => metrics(m.metrics) },
        { label: "Registered", cell: (m) => [time(m.created_at), h("div", { class: "muted" }, m.created_by)] },
      ],
      rows: found.models,
      empty: "no models: `agentos models register NAME VERSION --type classifier`",
    }), pager(query, "after", found.next_after, { nextLabel: "Next →", firstLabel: "First" })));
}

export function metrics(values) {
  const entries = Object.entries(values ?? {});
  if (!entries.length) return "–";
  return entries.slice(0, 6).map(([k, v]) => h("div", {}, h("span", { class: "muted" }, `${k} `),
    typeof v === "number" ? String(Number(v.toPrecision(4))) : JSON.stringify(v)));
}
