// Graphs drawn with Cytoscape.js and the dagre layout (from npm, served from
// /static/vendor/): a correlation chain as a tree of causes, and later a workflow
// run's steps as a DAG. Each graph stays beside an accessible list of the same nodes.
let loading;

async function cytoscape() {
  if (!loading) {
    loading = Promise.all([import("/static/vendor/cytoscape.mjs"),
                           import("/static/vendor/cytoscape-dagre.mjs")])
      .then(([core, dagre]) => {
        core.default.use(dagre.default);
        return core.default;
      });
  }
  return loading;
}

const TONE = { ok: "#13743b", bad: "#b3261e", run: "#0b4fb3", warn: "#7a5300", idle: "#4f5766" };

// nodes: [{id, label, tone, href}], edges: [{from, to}]; draws into container and
// opens a node's href when it is clicked
export async function drawGraph(container, nodes, edges, { direction = "TB", highlight } = {}) {
  const make = await cytoscape();
  const graph = make({
    container,
    elements: [
      ...nodes.map((n) => ({ data: { id: n.id, label: n.label, href: n.href,
                                     color: TONE[n.tone] ?? TONE.idle } })),
      ...edges.map((e) => ({ data: { id: `${e.from}->${e.to}`, source: e.from, target: e.to } })),
    ],
    layout: { name: "dagre", rankDir: direction, nodeSep: 24, rankSep: 40 },
    style: [
      { selector: "node", style: {
        shape: "round-rectangle", "background-color": "#fff", "border-width": 2,
        "border-color": "data(color)", label: "data(label)", "text-wrap": "wrap",
        "text-max-width": 160, "font-size": 11, color: "#1d2330", "text-valign": "center",
        width: 170, height: 40, padding: 4 } },
      { selector: `node[id = "${highlight ?? ""}"]`, style: { "background-color": "#fff6cc", "border-width": 3 } },
      { selector: "edge", style: {
        width: 1.5, "line-color": "#8a93a3", "target-arrow-color": "#8a93a3",
        "target-arrow-shape": "triangle", "curve-style": "bezier" } },
    ],
    wheelSensitivity: 0.3,
    maxZoom: 1.6,
    boxSelectionEnabled: false,
  });
  graph.on("tap", "node", (e) => {
    const href = e.target.data("href");
    if (href) location.assign(href);
  });
  return graph;
}
