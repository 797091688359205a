// Knowledge: search the documents agents and people keep (best first, with the
// matches marked), or list them by namespace; operators add documents.
import { get } from "../api.js";
import { apiForm, card, fill, filters, h, link, pager, time, title } from "../ui.js";

export async function render({ main, query }) {
  const found = await get("/api/v1/knowledge", {
    q: query.get("q"), namespace: query.get("namespace"),
    tag: query.get("tag") || undefined, cursor: query.get("cursor"), limit: 25,
  });
  const searching = found.mode !== "list";
  fill(main, title("Knowledge"),
    card("Search", filters([
      { name: "q", label: "Words" },
      { name: "namespace", label: "Namespace" },
      { name: "tag", label: "Tag" },
    ], query, { submit: "Search" })),
    found.warning ? h("p", { class: "banner", role: "status" }, found.warning) : null,
    card(searching ? `Best matches (${found.mode})` : "Documents by namespace and key",
      h("ol", { class: "results" }, found.documents.map((d) => h("li", {},
        h("div", {}, link(docPath(d), d.title || d.key), " ",
          h("span", { class: "muted mono" }, `${d.namespace}/${d.key}`),
          d.score != null ? h("span", { class: "muted" }, ` · score ${d.score.toPrecision(3)}`) : null),
        d.snippet ? h("p", { class: "snippet" }, marked(d.snippet)) : null,
        h("div", { class: "muted" }, d.tags.length ? `tags ${d.tags.join(", ")} · ` : "",
          "updated ", time(d.updated_at), ` by ${d.updated_by}`)))),
      found.documents.length ? null : h("p", { class: "muted" }, searching ? "nothing matches" : "no documents yet"),
      pager(query, "cursor", found.next_cursor, { nextLabel: "More →", firstLabel: "First" })),
    writeCard());
}

export function docPath(d) {
  return `/knowledge/${encodeURIComponent(d.namespace)}/${encodeURIComponent(d.key)}`;
}

// The snippet marks matches with <mark>…</mark> and is otherwise the document's own
// text, not escaped: it is split here and every part goes in as text.
export function marked(snippet) {
  return snippet.split(/(<mark>.*?<\/mark>)/s).map((part) => {
    const hit = /^<mark>(.*)<\/mark>$/s.exec(part);
    return hit ? h("mark", {}, hit[1]) : part;
  });
}

function writeCard() {
  const form = apiForm({
    method: "PUT", pattern: "/api/v1/knowledge/{namespace}/{key:path}", submit: "Save document",
    name: "put-document",
    fields: [
      { name: "namespace", label: "Namespace", required: true },
      { name: "key", label: "Key", required: true },
      { name: "title", label: "Title" },
      { name: "tags", label: "Tags (comma-separated)" },
      { name: "content", label: "Content", type: "textarea", required: true },
    ],
    params: (v) => ({ namespace: v.namespace, key: v.key }),
    toBody: (v) => ({ title: v.title, content: v.content,
                      tags: v.tags.split(",").map((t) => t.trim()).filter(Boolean) }),
    done: (doc) => location.assign(docPath(doc)),
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "Add or replace a document"), form) : null;
}
