// Workers: each instance, what it serves and runs, its locks and heartbeat; live.
import { get } from "../api.js";
import { ago, badge, card, every, fill, fillRows, filters, h, link, liveMark, short, table, time, title } from "../ui.js";

export async function render({ main, query }) {
  const stopped = query.get("include_stopped") === "true";
  const columns = [
    { label: "Worker", cell: (w) => [link(`/workers/${encodeURIComponent(w.id)}`, h("span", { class: "mono" }, w.id)),
                                     h("div", { class: "muted" }, `${w.host} · pid ${w.pid}`)] },
    { label: "Status", cell: (w) => badge(w.status) },
    { label: "Serves", cell: (w) => (w.agents ? w.agents.map((a) => [link(`/agents/${encodeURIComponent(a)}`, a), " "]) : "every agent") },
    { label: "Load", cell: (w) => `${w.running} / ${w.concurrency}`, num: true },
    { label: "Running now", cell: (w) => running(w) },
    { label: "Holds", cell: (w) => (w.locks.length ? w.locks.map((l) => h("div", {},
        h("code", {}, l.resource), " token ", l.token, " for ", short(l.task_id))) : "–") },
    { label: "Last heartbeat", cell: (w) => ago(w.last_heartbeat_at) },
    { label: "Started", cell: (w) => time(w.started_at) },
    { label: "Problems", cell: (w) => problems(w) },
  ];
  const body = h("tbody");
  const running = (w) => (w.tasks ?? []).length
    ? w.tasks.map((t) => h("div", {}, link(`/tasks/${t.id}`, short(t.id)), " ", t.agent))
    : (w.running ? `${w.running} task(s)` : "–");
  const view = table({ caption: "Workers", columns, rows: [] });
  view.querySelector("tbody").replaceWith(body);
  fill(main, title("Workers", liveMark()),
    card("Filter", filters([{ name: "include_stopped", label: "Show",
                              options: [["", "running workers"], ["true", "stopped ones too"]] }], query)),
    card("Instances", view));
  const refresh = async () => {
    const { workers } = await get("/api/v1/workers", { include_stopped: stopped || undefined });
    fillRows(body, columns, workers,
             "no worker has registered: start one with `agentos worker` (or run the demo)");
  };
  await refresh();
  every(3000, refresh);
}

function problems(w) {
  const unloadable = Object.entries(w.unloadable ?? {});
  if (!unloadable.length) return "–";
  return unloadable.map(([agent, error]) => h("div", {}, badge("cannot load", "bad"), " ",
    link(`/agents/${encodeURIComponent(agent)}`, agent), ": ", h("span", { class: "mono" }, error)));
}
