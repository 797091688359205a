// One worker instance: what it serves, the agents it cannot load (and why), the
// tasks it runs now and the locks they hold, its heartbeat; live.
import { get } from "../api.js";
import { ago, badge, card, every, facts, fill, h, link, liveMark, short, table, time, title } from "../ui.js";

export async function render({ main, params }) {
  const path = `/api/v1/workers/${encodeURIComponent(params.worker_id)}`;
  let drawn = "";
  const draw = async () => {
    const w = await get(path);
    const now = JSON.stringify(w);
    if (now === drawn) return;
    drawn = now;
    fill(main, title(w.id, badge(w.status), liveMark()),
      card("Instance", facts([
        ["host", `${w.host} · pid ${w.pid}`],
        ["serves", w.agents ? w.agents.map((a) => [link(`/agents/${encodeURIComponent(a)}`, a), " "]) : "every agent"],
        ["load", `${w.running} of ${w.concurrency} slots`],
        ["last heartbeat", ago(w.last_heartbeat_at)],
        ["started", time(w.started_at)],
        ["stopped", time(w.stopped_at)],
      ])),
      unloadableCard(w),
      card("Running now", table({
        caption: "Tasks it runs",
        columns: [
          { label: "Task", cell: (t) => link(`/tasks/${t.id}`, short(t.id)) },
          { label: "Agent", cell: (t) => `${t.agent} ${t.version}` },
          { label: "Attempt", cell: (t) => t.attempt, num: true },
          { label: "Since", cell: (t) => ago(t.started_at) },
          { label: "Lease until", cell: (t) => time(t.lease_expires_at) },
          { label: "", cell: (t) => (t.cancel_requested ? badge("cancelling", "warn") : "") },
        ],
        rows: w.running_tasks,
        empty: "nothing running",
      })),
      card("Locks its tasks hold", table({
        caption: "Held locks",
        columns: [
          { label: "Resource", cell: (l) => h("code", {}, l.resource) },
          { label: "Token", cell: (l) => l.token, num: true },
          { label: "Task", cell: (l) => (l.task_id ? link(`/tasks/${l.task_id}`, short(l.task_id)) : "–") },
          { label: "Lease until", cell: (l) => time(l.expires_at) },
        ],
        rows: w.held_locks,
        empty: "no locks",
      })));
  };
  await draw();
  every(2000, draw);
}

// The agents whose handler this worker could not load: it leaves their tasks to a
// worker that can (the task's explain says so too).
function unloadableCard(w) {
  const failed = Object.entries(w.unloadable ?? {});
  if (!failed.length) return null;
  return card("Cannot load", table({
    caption: "Agents it cannot load",
    columns: [
      { label: "Agent", cell: ([agent]) => link(`/agents/${encodeURIComponent(agent)}`, agent) },
      { label: "Error", cell: ([, error]) => h("pre", { class: "error" }, error) },
    ],
    rows: failed,
    rowAttrs: ([agent]) => ({ dataset: { unloadable: agent } }),
  }));
}
