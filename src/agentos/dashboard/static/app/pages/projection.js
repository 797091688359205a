// One projection: where it stands and its state, key by key (paged, by prefix).
import { get } from "../api.js";
import { badge, card, every, facts, fill, filters, h, json, pager, table, time, title } from "../ui.js";
import { lag, progress } from "./projections.js";

export async function render({ main, params, query }) {
  const name = params.projection;
  const path = `/api/v1/projections/${encodeURIComponent(name)}`;
  const [status, state] = await Promise.all([
    get(path),
    get(`${path}/state`, { prefix: query.get("prefix") || undefined,
                           after: query.get("after") || undefined, limit: 50 }),
  ]);
  const about = h("div");
  const drawStatus = (p) => fill(about, facts([
    ["reads", p.types.map((t) => [h("code", {}, t), " "])],
    ["status", [badge(p.status.replace("_", " ")), p.rebuild ? progress(p.rebuild.progress) : null]],
    ["cursor", `${p.cursor_seq} of ${p.head_seq}`],
    ["lag", lag(p)],
    ["applied", p.applied],
    ["updated", time(p.updated_at)],
  ]));
  drawStatus(status);
  fill(main, title(name),
    h("div", { class: "grid" }, card("Where it stands", h("p", { class: "muted" }, status.description), about),
      card("Find", filters([{ name: "prefix", label: "Keys starting with" }], query))),
    card("State", table({
      caption: "State by key",
      columns: [
        { label: "Key", cell: ([key]) => h("code", {}, key) },
        { label: "Value", cell: ([, value]) => json(value) },
      ],
      rows: Object.entries(state.items),
      empty: "nothing folded yet",
    }), pager(query, "after", state.next_after, { nextLabel: "Next →", firstLabel: "First" })));
  every(2000, async () => drawStatus(await get(path)));
}
