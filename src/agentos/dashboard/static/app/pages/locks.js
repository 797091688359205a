// Locks: who holds each resource, until when, and who waits in which order;
// admins may take a lock from its holder. Live.
import { get } from "../api.js";
import { action, ago, badge, card, every, fill, fillRows, filters, h, link, liveMark, short, table, title } from "../ui.js";

const FORCE = "/api/v1/locks/{resource:path}/force-release";

export async function render({ main, query }) {
  const type = query.get("type");
  const body = h("tbody");
  const columns = [
    { label: "Resource", cell: (l) => [h("code", {}, l.resource), h("div", { class: "muted" }, `type ${l.type}`)] },
    { label: "Holder", cell: (l) => holder(l.holder) },
    { label: "Token", cell: (l) => (l.holder ? l.holder.token : "–"), num: true },
    { label: "Lease ends", cell: (l) => (l.holder ? [ago(l.holder.expires_at), l.holder.lapsed ? [" ", badge("lapsed")] : null] : "–") },
    { label: "Waiting", cell: (l) => queue(l.queue) },
    { label: "Actions", cell: (l) => (l.holder ? action({
        label: "Force release", pattern: FORCE, params: { resource: l.resource }, danger: true,
        name: `force-release ${l.resource}`,
        confirm: `Take ${l.resource} from ${l.holder.owner}? Its holder's writes with token ${l.holder.token} will be refused.`,
        done: () => refresh() }) ?? "–" : "–") },
  ];
  const view = table({ caption: "Locks", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, title("Locks", liveMark()),
    card("Filter", filters([{ name: "type", label: "Resource type", placeholder: "device" }], query)),
    card("Held and awaited", view));
  async function refresh() {
    const { locks } = await get("/api/v1/locks", { type });
    fillRows(body, columns, locks, "no lock is held or awaited");
  }
  await refresh();
  every(2000, refresh);
}

function holder(h_) {
  if (!h_) return h("span", { class: "muted" }, "free");
  return [h("span", { class: "mono" }, h_.owner),
          h("div", { class: "muted" }, `priority ${h_.priority} · since `, ago(h_.acquired_at)),
          h_.task_id ? h("div", {}, "task ", link(`/tasks/${h_.task_id}`, short(h_.task_id)), h_.agent ? ` (${h_.agent})` : "") : null];
}

function queue(waiters) {
  if (!waiters.length) return "–";
  return h("ol", { class: "queue" }, waiters.map((w) => h("li", {},
    h("span", { class: "mono" }, w.owner), ` · priority ${w.priority} · waiting `, ago(w.queued_at),
    w.task_id ? [" · task ", link(`/tasks/${w.task_id}`, short(w.task_id))] : null)));
}
