// Durable subscriptions: each consumer's cursor in the event log and how far behind
// the head it is; live.
import { get } from "../api.js";
import { action, ago, badge, card, every, fill, fillRows, h, liveMark, table, title } from "../ui.js";

export async function render({ main }) {
  const body = h("tbody");
  const columns = [
    { label: "Name", cell: (s) => h("span", { class: "mono" }, s.name) },
    { label: "Event types", cell: (s) => h("code", {}, s.type) },
    { label: "Acknowledged up to", cell: (s) => s.cursor_seq, num: true },
    { label: "Behind the head", cell: (s) => lag(s), num: true },
    { label: "Last ack", cell: (s) => ago(s.acked_at) },
    { label: "Actions", cell: (s) => action({
        label: "Delete", method: "DELETE", pattern: "/api/v1/subscriptions/{name}",
        params: { name: s.name }, danger: true, name: `delete ${s.name}`, done: () => refresh(),
        confirm: `Delete the subscription ${s.name}? Its consumer loses its place.` }) ?? "–" },
  ];
  const view = table({ caption: "Subscriptions", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, title("Subscriptions", liveMark()), card("Consumers of the event log", view));
  async function refresh() {
    const { subscriptions } = await get("/api/v1/subscriptions");
    fillRows(body, columns, subscriptions,
             "no durable subscriptions: POST /api/v1/subscriptions {name, type}");
  }
  await refresh();
  every(3000, refresh);
}

function lag(s) {
  const behind = Math.max(0, (s.head_seq ?? s.cursor_seq) - s.cursor_seq);
  return behind ? badge(`${behind} events`, behind > 1000 ? "bad" : "warn") : badge("caught up", "ok");
}
