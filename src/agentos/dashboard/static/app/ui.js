// The pieces every page is made of: tables, facts, badges, times, buttons and
// forms that call the API, filters kept in the URL, pagers, live refresh.
import { ApiError, call, route } from "./api.js";
import { append, fill, frag, h } from "./dom.js";
import { can } from "./session.js";

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

// ------------------------------------------------------------------ text

const pad = (n) => String(n).padStart(2, "0");

export function time(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
               `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h("time", { datetime: iso, title: iso }, text);
}

export function ago(iso) {
  if (!iso) return "–";
  const s = (Date.parse(iso) - Date.now()) / 1000;
  const a = Math.abs(s);
  const text = a < 90 ? `${Math.round(a)} s` : a < 5400 ? `${Math.round(a / 60)} min`
    : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return h("time", { datetime: iso, title: iso }, s > 1 ? `in ${text}` : `${text} ago`);
}

export function duration(ms) {
  if (ms == null) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s`
    : `${(ms / 60000).toFixed(1)} min`;
}

// UUIDv7 ids start with their time (equal for a minute), so the random tail tells them apart
export const shortText = (id) => `…${String(id).slice(-8)}`;
export const short = (id) => (id ? h("span", { class: "mono", title: id }, shortText(id)) : "–");

export function link(href, ...children) { return h("a", { href }, ...children); }

const TONES = {
  ok: ["succeeded", "published", "ok", "idle", "intact", "active", "alive", "granted", "completed", "approved", "deployed"],
  bad: ["failed", "dead", "timeout", "lost", "broken", "denied", "error", "rejected", "expired", "revoked", "stopped"],
  run: ["running", "claimed", "busy", "processing", "held", "started"],
  warn: ["pending", "scheduled", "retrying", "waiting", "queued", "draft", "paused", "deferred", "lapsed", "training"],
};

export function toneOf(text) {
  return Object.keys(TONES).find((k) => TONES[k].includes(String(text)));
}

export function badge(text, tone) {
  const found = tone ?? toneOf(text);
  return h("span", { class: `badge ${found ?? ""}` }, text);
}

export function json(value) {
  return h("pre", {}, value === undefined ? "" : JSON.stringify(value, null, 2));
}

// ------------------------------------------------------------------ layout

export function title(text, ...actions) {
  return h("div", { class: "title-row" }, h("h1", {}, text),
           h("div", { class: "actions" }, actions));
}

export function card(heading, ...children) {
  const id = uid("card");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, heading),
           children);
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([label, value]) =>
    [h("dt", {}, label), h("dd", {}, value ?? "–")]));
}

// columns: [{label, cell: (row) => node, num}]; rows: the data
export function table({ caption, columns, rows, empty = "nothing yet", rowAttrs }) {
  const body = h("tbody");
  fillRows(body, columns, rows, empty, rowAttrs);
  // a wide table scrolls within its box, which the keyboard can reach too
  return h("div", { class: "table-wrap", tabindex: "0", role: "region",
                    "aria-label": caption ?? "table" }, h("table", {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) =>
      h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    body));
}

// Draw the rows again only when they changed: a live table keeps the keyboard focus
// (and the reader's place) while nothing new came.
export function fillRows(body, columns, rows, empty = "nothing yet", rowAttrs) {
  const signature = JSON.stringify(rows);
  if (body.dataset.rows === signature) return;
  body.dataset.rows = signature;
  fill(body, rows.length ? rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
    columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(row)))))
    : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, messageOf(error));
}

export function messageOf(error) {
  return error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message ?? error);
}

// ------------------------------------------------------------------ notices

export function notify(message, { error = false } = {}) {
  const box = document.getElementById("notices");
  if (!box) return;
  const note = h("div", { class: `notice ${error ? "bad" : ""}`, role: error ? "alert" : null },
                 message);
  box.append(note);
  setTimeout(() => note.remove(), error ? 9000 : 5000);
}

// ------------------------------------------------------------------ actions

// A button that calls one API route; absent when the role may not call it.
export function action({ label, method = "POST", pattern, params = {}, body, confirm: ask,
                         danger = false, primary = false, done, name }) {
  if (!can(method, pattern)) return null;
  const button = h("button", { type: "button", class: danger ? "danger" : primary ? "primary" : null,
                               dataset: { action: name ?? label } }, label);
  button.addEventListener("click", async () => {
    if (ask && !window.confirm(ask)) return;
    button.disabled = true;
    try {
      const result = await call(method, route(pattern, params),
                                { body: typeof body === "function" ? body() : body });
      notify(`${label}: done`);
      if (done) await done(result);
    } catch (e) {
      notify(`${label}: ${messageOf(e)}`, { error: true });
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// A form whose fields become the JSON body of one API call; absent when the role
// may not call it. fields: [{name, label, type, options, value, required}];
// params: the route's parameters, or a function of the fields' values
export function apiForm({ method = "POST", pattern, params = {}, fields, submit, toBody,
                          done, inline = false, name, contentType, query }) {
  if (!can(method, pattern)) return null;
  const inputs = {};
  const error = h("p", { class: "error", role: "alert" });
  const controls = fields.map((f) => {
    const id = uid("field");
    let input;
    if (f.type === "select") {
      input = h("select", { id, name: f.name, required: f.required },
                f.options.map((o) => h("option", { value: o, selected: o === f.value }, o || "—")));
    } else if (f.type === "textarea") {
      input = h("textarea", { id, name: f.name, required: f.required, rows: f.rows ?? 6,
                              placeholder: f.placeholder }, f.value ?? "");
    } else if (f.type === "checkbox") {
      input = h("input", { id, name: f.name, type: "checkbox", checked: Boolean(f.value) });
    } else {
      input = h("input", { id, name: f.name, type: f.type ?? "text", required: f.required,
                           value: f.value ?? null, placeholder: f.placeholder,
                           min: f.min, max: f.max, step: f.step, autocomplete: f.autocomplete ?? "off" });
    }
    inputs[f.name] = input;
    return h("label", { for: id }, f.label, input);
  });
  const button = h("button", { type: "submit", class: "primary" }, submit);
  const form = h("form", { class: inline ? "inline" : "stack", dataset: { form: name ?? submit } },
                 controls, h("div", {}, button), error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const values = {};
    for (const [key, input] of Object.entries(inputs)) {
      values[key] = input.type === "checkbox" ? input.checked : input.value;
    }
    let body;
    try {
      body = toBody ? toBody(values) : values;
    } catch (problem) {
      error.textContent = String(problem.message ?? problem);
      return;
    }
    button.disabled = true;
    try {
      const where = typeof params === "function" ? params(values) : params;
      const result = await call(method, route(pattern, where), {
        body, query: typeof query === "function" ? query(values) : query,
        headers: contentType ? { "Content-Type": contentType } : {} });
      notify(`${submit}: done`);
      if (done) await done(result, form);
    } catch (problem) {
      error.textContent = messageOf(problem);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export function parseJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

// ------------------------------------------------------------------ filters and paging

// A GET form over the page's own URL: the filters live in the query string, so a
// filtered view is a link that can be shared. fields: [{name, label, options?, type?}];
// a "moment" field is picked in local time and kept in the URL as an ISO time (UTC),
// so the link means the same moment wherever it is opened.
export function filters(fields, query, { submit = "Filter" } = {}) {
  return h("form", { class: "filters", method: "get", role: "search" },
    fields.map((f) => {
      const id = uid("filter");
      const value = query.get(f.name) ?? "";
      if (f.type === "moment") return momentField(id, f, value);
      const input = f.options
        ? h("select", { id, name: f.name }, f.options.map(([v, text]) =>
            h("option", { value: v, selected: v === value }, text)))
        : h("input", { id, name: f.name, value, type: f.type ?? "search", placeholder: f.placeholder,
                       autocomplete: "off" });
      return h("label", { for: id }, f.label, input);
    }),
    h("button", { type: "submit" }, submit),
    h("a", { href: location.pathname }, "Clear"));
}

function momentField(id, f, value) {
  const kept = h("input", { type: "hidden", name: f.name, value: value || null });
  const picked = h("input", { id, type: "datetime-local", step: 1, value: localInput(value) || null });
  picked.addEventListener("input", () => {
    const at = picked.value ? new Date(picked.value) : null;
    kept.value = at && !Number.isNaN(at.getTime()) ? at.toISOString() : "";
  });
  return h("label", { for: id }, f.label, picked, kept);
}

// an ISO time as a datetime-local input shows it (the browser's time zone)
function localInput(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Links to the newest page and to the next (older or later) one, keeping the filters.
export function pager(query, cursorName, next, { nextLabel = "Older →", firstLabel = "Newest" } = {}) {
  const at = (cursor) => {
    const q = new URLSearchParams(query);
    if (cursor == null) q.delete(cursorName); else q.set(cursorName, cursor);
    const text = q.toString();
    return text ? `${location.pathname}?${text}` : location.pathname;
  };
  return h("nav", { class: "pager", "aria-label": "Pages" },
    query.get(cursorName) ? h("a", { href: at(null) }, firstLabel) : null,
    next != null ? h("a", { href: at(next), rel: "next" }, nextLabel)
      : h("span", { class: "muted" }, "no more"));
}

// ------------------------------------------------------------------ live

// Run fn now and every ms while the page is visible (one run at a time).
export function every(ms, fn) {
  let running = false;
  const tick = async () => {
    if (running || document.hidden) return;
    running = true;
    try { await fn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
    finally { running = false; }
  };
  const timer = setInterval(tick, ms);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  return { now: tick, stop: () => clearInterval(timer) };
}

export function liveMark(text = "live") {
  return h("span", { class: "live on", title: "updates by itself" }, text);
}

export { append, fill, frag, h };
