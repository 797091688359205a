// "Where would this event go": a form that asks POST /api/v1/router/explain about an
// event that is not appended (nothing is emitted, routed or audited) and draws every
// published agent's verdict: the triggers that fire with the task each would submit,
// or the first condition that failed. On an agent's page it answers for that agent.
import { apiForm, badge, card, fill, h, json, link, parseJson, table } from "./ui.js";

export function routeExplainCard({ agent } = {}) {
  const answer = h("div", { class: "stack", "aria-live": "polite", dataset: { answer: "route-explain" } });
  const form = apiForm({
    pattern: "/api/v1/router/explain", submit: "Explain", name: "route-explain",
    fields: [
      { name: "type", label: "Event type", required: true, placeholder: "ticket.opened" },
      { name: "source", label: "Source", value: "dashboard" },
      { name: "payload", label: "Payload (JSON)", type: "textarea", value: "{}", rows: 4 },
      { name: "priority", label: "Priority", type: "select", options: ["normal", "low", "high", "critical"], value: "normal" },
    ],
    toBody: (v) => ({ type: v.type, source: v.source || undefined, priority: v.priority,
                      payload: parseJson(v.payload, "payload") ?? {} }),
    done: (result) => fill(answer, verdicts(result, agent)),
  });
  if (!form) return null;
  return card(agent ? "Would this event reach this agent?" : "Where would this event go?",
    h("p", { class: "muted" }, agent
      ? "Asks the router about an event without emitting it: whether a trigger of this agent fires, and if not, why."
      : "Asks the router about an event without emitting it: each published agent's triggers that fire, or the first condition that failed."),
    form, answer);
}

function verdicts(result, agent) {
  const agents = agent ? result.agents.filter((a) => a.agent === agent) : result.agents;
  const summary = agent
    ? (agents.length ? (agents[0].routed ? `${result.event.type} would reach ${agent}`
                                        : `${result.event.type} would not reach ${agent}`)
                     : `${agent} has no published version the router matches`)
    : result.summary;
  const rows = agents.flatMap((a) => (a.triggers.length ? a.triggers : [null]).map((t) => ({ a, t })));
  return [
    h("p", { class: "verdict", dataset: { routed: String(agents.some((a) => a.routed)) } },
      h("strong", {}, summary)),
    table({
      caption: "Each agent's triggers",
      columns: [
        { label: "Agent", cell: ({ a }) => link(`/agents/${encodeURIComponent(a.agent)}`, a.agent) },
        { label: "Version", cell: ({ a }) => a.version },
        { label: "Trigger", cell: ({ t }) => (t ? h("code", {}, t.event) : "–") },
        { label: "Fires", cell: ({ t }) => (t ? badge(t.matches ? "yes" : "no", t.matches ? "ok" : undefined) : badge("no")) },
        { label: "Why", cell: ({ t }) => (t ? (t.matches ? taskOf(t.task) : t.failed) : "no triggers: tasks reach it only when submitted") },
      ],
      rows,
      empty: "no published agent",
    }),
  ];
}

function taskOf(task) {
  return h("details", {}, h("summary", {}, `submits a task at priority ${task.priority}` +
                                           (task.capability ? ` (capability ${task.capability})` : "")),
           json(task.input));
}
