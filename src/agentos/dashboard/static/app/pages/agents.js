// Agents: search the registry; each agent links to its page.
import { get } from "../api.js";
import { apiForm, badge, card, fill, filters, h, link, pager, table, time, title } from "../ui.js";

const STATUSES = [["", "any status"], ["published", "published"], ["draft", "draft"],
                  ["deprecated", "deprecated"], ["archived", "archived"]];

export async function render({ main, query }) {
  const found = await get("/api/v1/agents", {
    q: query.get("q"), status: query.get("status"), tag: query.get("tag"),
    capability: query.get("capability"), event: query.get("event"),
    after: query.get("after"), limit: 50,
  });
  fill(main, title("Agents"),
    card("Search",
      filters([{ name: "q", label: "Text" }, { name: "status", label: "Status", options: STATUSES },
               { name: "tag", label: "Tag" }, { name: "capability", label: "Capability" },
               { name: "event", label: "Triggered by event type", placeholder: "alert.cpu" }], query)),
    card("Registry", table({
      caption: "Agents",
      columns: [
        { label: "Name", cell: (a) => [link(`/agents/${encodeURIComponent(a.name)}`, a.display_name || a.name),
                                       a.display_name ? h("div", { class: "muted mono" }, a.name) : null] },
        { label: "Version", cell: (a) => a.version },
        { label: "Status", cell: (a) => badge(a.status) },
        { label: "Role", cell: (a) => a.role ?? "–" },
        { label: "Tags", cell: (a) => a.tags.join(", ") },
        { label: "Triggers", cell: (a) => a.triggers.map((t) => h("code", {}, t, " ")) },
        { label: "Updated", cell: (a) => time(a.updated_at) },
      ],
      rows: found.agents,
      empty: "no agents match: import one with `agentos agents import --template qa-manager`",
    }), pager(query, "after", found.next_after, { nextLabel: "Next →", firstLabel: "First" })),
    importCard());
}

function importCard() {
  const form = apiForm({
    pattern: "/api/v1/agents/import", submit: "Import", name: "import-agents",
    contentType: "application/yaml",
    fields: [
      { name: "yaml", label: "Definitions (YAML; several separated by ---)", type: "textarea",
        rows: 12, required: true, placeholder: "name: my-agent\nversion: 1.0.0\nhandler: {type: python, target: my_pkg.agent:handle}" },
      { name: "publish", label: "Publish them", type: "checkbox" },
    ],
    toBody: (v) => v.yaml,
    query: (v) => ({ publish: v.publish ? "true" : undefined }),
    done: (result) => location.assign(`/agents/${encodeURIComponent(result.agents[0].name)}`),
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "Import agents from YAML"), form) : null;
}
