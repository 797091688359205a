// One event: its fields and payload, the agents it was routed to (and the tasks
// that made), and its correlation chain as a tree of causes.
import { get } from "../api.js";
import { drawGraph } from "../graph.js";
import { badge, card, every, facts, fill, h, json, link, short, shortText, table, time, title, toneOf } from "../ui.js";

export async function render({ main, params }) {
  const id = params.event_id;
  const [event, routed] = await Promise.all([
    get(`/api/v1/events/${encodeURIComponent(id)}`),
    get(`/api/v1/events/${encodeURIComponent(id)}/routes`),
  ]);
  const chain = await get(`/api/v1/correlations/${encodeURIComponent(event.correlation_id)}`);
  const kinds = kindsOf(chain.tree);
  const routesCard = card("Routes", h("div", { class: "routes" }, routesView(routed)));
  if (!routed.routed) {  // the router takes it in a moment: follow it until then
    const live = every(1000, async () => {
      const now = await get(`/api/v1/events/${encodeURIComponent(id)}/routes`);
      if (!now.routed) return;
      live.stop();
      fill(routesCard.querySelector(".routes"), routesView(now));
    });
  }
  fill(main,
    title(`Event ${event.seq}`, h("code", {}, event.type)),
    h("div", { class: "grid" },
      card("Fields", facts([
        ["id", h("span", { class: "mono" }, event.id)],
        ["type", h("code", {}, event.type)],
        ["source", event.source],
        ["time", time(event.created_at)],
        ["priority", event.priority],
        ["correlation", link(`/events?correlation_id=${encodeURIComponent(event.correlation_id)}`, event.correlation_id)],
        ["caused by", event.causation_id ? causeLink(event.causation_id, kinds) : "–"],
        ["run", event.run_id],
        ["subject", event.subject],
        ["dedup key", event.dedup_key],
      ])),
      card("Payload", json(event.payload))),
    routesCard,
    chainCard(chain.tree, event.id,
              "Everything sharing its correlation id, each under what caused it."));
}

const GRAPH_MAX_NODES = 300;  // larger chains are listed only

// The chain as a graph of causes (Cytoscape.js with dagre) above the same as a list.
export function chainCard(nodes, here, note) {
  const flat = [];
  const walk = (list, parent) => list.forEach((n) => { flat.push([n, parent]); walk(n.children, n); });
  walk(nodes, null);
  const graph = flat.length > 1 && flat.length <= GRAPH_MAX_NODES
    ? h("div", { class: "graph", role: "img",
                 "aria-label": `the correlation chain as a graph of ${flat.length} nodes; the list below has the same` })
    : null;
  if (graph) {
    queueMicrotask(() => drawGraph(graph, flat.map(([n]) => ({
      id: n.id,
      label: n.kind === "task" ? `task ${n.agent}\n${n.status}` : `${n.type}\n#${n.seq}`,
      tone: n.kind === "task" ? toneOf(n.status) : null,
      href: `/${n.kind}s/${n.id}`,
    })), flat.filter(([, p]) => p).map(([n, p]) => ({ from: p.id, to: n.id })),
    { highlight: here }).catch((e) => graph.replaceWith(h("p", { class: "muted" },
      `the graph cannot be drawn: ${e.message}`))));
  }
  return card("Correlation chain", h("p", { class: "muted" }, note), graph, tree(nodes, here));
}

function routesView(routed) {
  if (!routed.routed) {
    return h("p", { class: "muted" }, "not routed yet (the router picks it up in a moment)");
  }
  return table({
    caption: "Routes",
    columns: [
      { label: "Agent", cell: (r) => link(`/agents/${encodeURIComponent(r.agent)}`, r.agent) },
      { label: "Version", cell: (r) => r.agent_version },
      { label: "Trigger", cell: (r) => `#${r.trigger_index}` },
      { label: "Priority", cell: (r) => r.priority, num: true },
      { label: "Task", cell: (r) => (r.task_id ? link(`/tasks/${r.task_id}`, short(r.task_id))
                                     : r.skipped ? `none: ${r.skipped}` : "–") },
      { label: "Routed", cell: (r) => time(r.created_at) },
    ],
    rows: routed.routes,
    empty: "routed to no agent: no published agent's trigger matches it",
  });
}

// id -> "event" or "task", for every node of a correlation tree
export function kindsOf(nodes, kinds = new Map()) {
  for (const n of nodes) {
    kinds.set(n.id, n.kind);
    kindsOf(n.children, kinds);
  }
  return kinds;
}

// a cause is an event or a task of the same correlation
export function causeLink(id, kinds) {
  const kind = kinds.get(id) ?? "event";
  return [link(`/${kind}s/${id}`, short(id)), ` (${kind})`];
}

export function tree(nodes, here) {
  return h("ul", { class: "tree", "aria-label": "correlation chain" },
           nodes.map((n) => branch(n, here)));
}

function branch(node, here) {
  const label = node.kind === "task"
    ? [badge("task", "run"), link(`/tasks/${node.id}`, `${node.agent} ${shortText(node.id)}`),
       badge(node.status), node.attempt ? h("span", { class: "muted" }, `attempt ${node.attempt}`) : null]
    : [h("code", {}, node.type), link(`/events/${node.id}`, `#${node.seq}`),
       h("span", { class: "muted" }, node.source ?? "")];
  return h("li", { class: node.id === here ? "here" : null,
                   "aria-current": node.id === here ? "true" : null },
    h("span", { class: "node" }, label, time(node.created_at)),
    node.children.length ? h("ul", {}, node.children.map((c) => branch(c, here))) : null);
}
