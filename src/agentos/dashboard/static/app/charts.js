// Time-series charts drawn with uPlot (from npm, served from /static/vendor/), each in
// a figure with a caption and the same numbers as a table for screen readers.
import { h } from "./dom.js";

let loading;

async function uplot() {
  if (!loading) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/uPlot.min.css" }));
    loading = import("/static/vendor/uPlot.esm.js").then((module) => module.default);
  }
  return loading;
}

const COLORS = ["#0b57d0", "#b3261e", "#13743b", "#7a5300", "#6a3d9a"];

// series: [{label, values}] over times (seconds since the epoch); returns the figure,
// drawn once the library is loaded; update() redraws with new data. With no series the
// plot area is drawn all the same (its axes over the window), labelled as having none.
export function timeChart({ caption, times, series, height = 220, yLabel = "" }) {
  const plot = h("div", { class: "chart", role: "img", "aria-label": caption });
  const numbers = h("div");
  const empty = h("div", { class: "chart-empty", hidden: true }, "no data in this window");
  const figure = h("figure", { class: "chart-figure" }, h("figcaption", {}, caption),
                   h("div", { class: "chart-area" }, plot, empty),
                   h("details", {}, h("summary", {}, "the numbers"), numbers));
  let chart;
  let resized;
  const draw = async (t, s) => {
    numbers.replaceChildren(dataTable(caption, t, s));
    const none = !s.length;
    empty.hidden = !none;
    plot.setAttribute("aria-label", none ? `${caption}: no data in this window` : caption);
    if (!t.length) return;
    const make = await uplot();
    // nothing to draw: one blank series, so the axes still span the window
    const shown = none ? [{ label: "no data", values: t.map(() => null) }] : s;
    const data = [t, ...shown.map((one) => one.values)];
    if (chart && chart.empty === none && chart.series.length === shown.length + 1) {
      chart.setData(data);
      return;
    }
    chart?.destroy();
    const width = Math.max(320, plot.clientWidth || 600);
    chart = new make({
      width, height,
      series: [{}, ...shown.map((one, i) => ({ label: one.label, stroke: COLORS[i % COLORS.length],
                                               width: 2, points: { show: t.length < 60 } }))],
      // three significant digits: a cost of a few thousandths is not drawn as 0
      axes: [{}, { label: yLabel, size: 60,
                   values: (u, splits) => splits.map((v) => (v == null ? "" : String(Number(v.toPrecision(3))))) }],
      scales: { x: { time: true }, ...(none ? { y: { range: [0, 1] } } : {}) },
    }, data, plot);
    chart.empty = none;
    resized ??= new ResizeObserver(() => chart?.setSize({ width: Math.max(320, plot.clientWidth), height }));
    resized.observe(plot);
  };
  if (times.length) queueMicrotask(() => draw(times, series));
  figure.update = (t, s) => draw(t, s);
  return figure;
}

function dataTable(caption, times, series) {
  return h("table", { class: "numbers" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "time"),
                     series.map((s) => h("th", { scope: "col", class: "num" }, s.label)))),
    h("tbody", {}, times.map((t, i) => h("tr", {},
      h("td", {}, new Date(t * 1000).toLocaleString()),
      series.map((s) => h("td", { class: "num" }, s.values[i] ?? "–"))))));
}
