// One knowledge document: its content, tags, metadata and who wrote it.
import { get } from "../api.js";
import { action, card, facts, fill, h, json, link, time, title } from "../ui.js";

export async function render({ main, params }) {
  const path = `/api/v1/knowledge/${encodeURIComponent(params.namespace)}/${encodeURIComponent(params.key)}`;
  const doc = await get(path);
  fill(main,
    title(doc.title || doc.key,
          action({ label: "Delete", method: "DELETE", pattern: "/api/v1/knowledge/{namespace}/{key:path}",
                   params, danger: true, confirm: `Delete ${doc.namespace}/${doc.key}?`,
                   done: () => location.assign(`/knowledge?namespace=${encodeURIComponent(doc.namespace)}`) })),
    h("div", { class: "grid" },
      card("About", facts([
        ["namespace", link(`/knowledge?namespace=${encodeURIComponent(doc.namespace)}`, doc.namespace)],
        ["key", h("span", { class: "mono" }, doc.key)],
        ["tags", doc.tags.length ? doc.tags.map((t) => [link(`/knowledge?tag=${encodeURIComponent(t)}`, t), " "]) : "–"],
        ["written by", doc.created_by], ["created", time(doc.created_at)],
        ["updated by", doc.updated_by], ["updated", time(doc.updated_at)],
        ["embedded", doc.embedded ? "yes (vector search finds it)" : "no"],
      ])),
      card("Metadata", json(doc.metadata))),
    card("Content", h("pre", { class: "content", tabindex: "0", "aria-label": "content" }, doc.content)));
}
