// Events: the newest first, then live from the server's event stream (SSE). The
// browser's EventSource reconnects by itself and resumes after the last event it
// saw (Last-Event-ID), so nothing is lost or repeated across a reconnect.
import { get, url } from "../api.js";
import { routeExplainCard } from "../explain.js";
import { apiForm, card, fill, filters, h, link, notify, pager, parseJson, short, table, time, title } from "../ui.js";

const PAGE = 50;
const KEPT = 500;  // rows kept on screen while live

export async function render({ main, query }) {
  const type = query.get("type") || "";
  const source = query.get("source") || "";
  const correlation = query.get("correlation_id") || "";
  const since = query.get("since") || undefined;
  const until = query.get("until") || undefined;
  const before = query.get("before_seq");
  const page = await get("/api/v1/events", {
    order: "desc", before_seq: before, limit: PAGE, since, until,
    type: type || undefined, source: source || undefined, correlation_id: correlation || undefined,
  });
  const columns = [
    { label: "Seq", cell: (e) => link(`/events/${e.id}`, String(e.seq)), num: true },
    { label: "Time", cell: (e) => time(e.created_at) },
    { label: "Type", cell: (e) => h("code", {}, e.type) },
    { label: "Source", cell: (e) => e.source ?? "–" },
    { label: "Correlation", cell: (e) => link(`/events?correlation_id=${encodeURIComponent(e.correlation_id)}`, short(e.correlation_id)) },
    { label: "Payload", cell: (e) => h("code", { class: "payload" }, compact(e.payload)) },
  ];
  const view = table({ caption: "Events, newest first", columns, rows: page.events,
                       empty: before ? "no older events" : "no events yet",
                       rowAttrs: (e) => ({ dataset: { seq: e.seq, type: e.type } }) });
  const body = view.querySelector("tbody");
  // an older page, or a window that ends, is not followed live
  const still = Boolean(before || until);
  const status = h("span", { class: "live", id: "stream-status", role: "status" },
                   before ? "paused (older page)" : until ? "paused (a window that ends)" : "connecting…");
  fill(main,
    title("Events", status),
    card("Filter", filters([
      { name: "type", label: "Type (glob)", placeholder: "alert.*" },
      { name: "source", label: "Source", placeholder: "monitor" },
      { name: "correlation_id", label: "Correlation id" },
      { name: "since", label: "From", type: "moment" },
      { name: "until", label: "Before", type: "moment" },
    ], query)),
    card(before ? "Older events" : until ? "Newest first in the window" : "Newest first, live", view,
         pager(query, "before_seq", page.next_before_seq)),
    emitCard(),
    routeExplainCard());
  if (still) return;

  // live: from the newest event shown (or from now), with the same filters
  const newest = page.events.length ? page.events[0].seq : undefined;
  const stream = new EventSource(url("/api/v1/events/stream",
                                     { type: type || "*", after_seq: newest }));
  stream.onopen = () => { status.textContent = "live"; status.className = "live on"; };
  stream.onerror = () => {
    status.className = "live";
    if (stream.readyState !== EventSource.CLOSED) {
      status.textContent = "reconnecting…";
      return;
    }
    // the server refused the stream (its credential ended): a signed-out page says so
    status.textContent = "stopped";
    get("/api/v1/auth/me").catch(() => {});
  };
  stream.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if ((source && event.source !== source) ||
        (correlation && event.correlation_id !== correlation)) return;
    if (body.querySelector(`tr[data-seq="${event.seq}"]`)) return;
    const empty = body.querySelector("td[colspan]");
    if (empty) empty.parentElement.remove();
    const row = h("tr", { class: "fresh", dataset: { seq: event.seq, type: event.type } },
                  columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(event))));
    body.prepend(row);
    while (body.rows.length > KEPT) body.lastElementChild.remove();
  };
  addEventListener("pagehide", () => stream.close());
}

export function compact(payload) {
  const text = JSON.stringify(payload ?? {});
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

function emitCard() {
  const form = apiForm({
    pattern: "/api/v1/events", submit: "Emit event", name: "emit-event",
    fields: [
      { name: "type", label: "Type", required: true, placeholder: "alert.cpu" },
      { name: "source", label: "Source", value: "dashboard" },
      { name: "payload", label: "Payload (JSON)", type: "textarea", value: "{}", rows: 4 },
      { name: "priority", label: "Priority", type: "select", options: ["normal", "low", "high", "critical"], value: "normal" },
    ],
    toBody: (v) => ({ type: v.type, source: v.source || undefined, priority: v.priority,
                      payload: parseJson(v.payload, "payload") ?? {} }),
    done: (event) => notify(`emitted ${event.type} #${event.seq}`),
  });
  return form ? h("details", { class: "card" }, h("summary", {}, "Emit an event"), form) : null;
}
