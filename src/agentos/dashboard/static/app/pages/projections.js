// Projections: the read models folded from the event log, how far behind the log
// each is, and rebuilds (admins); live.
import { get } from "../api.js";
import { action, ago, badge, card, every, fill, fillRows, h, link, liveMark, table, title } from "../ui.js";

const STATUS_TONE = { live: "ok", catching_up: "warn", rebuilding: "run" };

export async function render({ main }) {
  const body = h("tbody");
  const columns = [
    { label: "Projection", cell: (p) => [link(`/projections/${encodeURIComponent(p.name)}`, p.name),
                                         h("div", { class: "muted" }, p.description)] },
    { label: "Reads", cell: (p) => p.types.map((t) => [h("code", {}, t), " "]) },
    { label: "Status", cell: (p) => [badge(p.status.replace("_", " "), STATUS_TONE[p.status]),
                                     p.rebuild ? progress(p.rebuild.progress) : null] },
    { label: "Cursor", cell: (p) => `${p.cursor_seq} / ${p.head_seq}`, num: true },
    { label: "Lag", cell: (p) => lag(p), num: true },
    { label: "Applied", cell: (p) => p.applied, num: true },
    { label: "Updated", cell: (p) => ago(p.updated_at) },
    { label: "Actions", cell: (p) => (p.status === "rebuilding" ? "–" : action({
        label: "Rebuild", pattern: "/api/v1/projections/{name}/rebuild", params: { name: p.name },
        name: `rebuild ${p.name}`, done: () => refresh(),
        confirm: `Clear ${p.name} and fold the whole log again?` }) ?? "–") },
  ];
  const view = table({ caption: "Projections", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, title("Projections", liveMark()), card("Read models", view));
  async function refresh() {
    const { projections } = await get("/api/v1/projections");
    fillRows(body, columns, projections, "no projections are registered");
  }
  await refresh();
  every(2000, refresh);
}

export function lag(p) {
  if (!p.lag_events) return badge("caught up", "ok");
  return [badge(`${p.lag_events} events`, p.lag_events > 1000 ? "bad" : "warn"),
          h("div", { class: "muted" }, `${p.lag_s.toFixed(1)} s behind`)];
}

export function progress(fraction) {
  const percent = Math.round(fraction * 100);
  return h("div", {}, h("progress", { max: 100, value: percent, "aria-label": "rebuild progress" }),
           ` ${percent}%`);
}
