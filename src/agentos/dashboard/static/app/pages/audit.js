// The audit log (admins): every change and refusal, newest first, and the check
// of its hash chain.
import { get } from "../api.js";
import { badge, card, fill, filters, h, pager, table, time, title } from "../ui.js";

export async function render({ main, query }) {
  const page = await get("/api/v1/audit", {
    actor: query.get("actor"), action: query.get("action"),
    resource_type: query.get("resource_type"), resource_id: query.get("resource_id"),
    outcome: query.get("outcome"), before_seq: query.get("before_seq"), limit: 50,
  });
  const result = h("div", { "aria-live": "polite" });
  const verify = h("button", { type: "button", dataset: { action: "verify" } }, "Verify the chain");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    fill(result, h("span", { class: "muted" }, "walking the chain…"));
    try {
      const v = await get("/api/v1/audit/verify");
      fill(result, v.intact
        ? h("p", { id: "verify-result" }, badge("intact"), ` ${v.checked} rows, head ${v.head_seq} `, h("code", {}, v.head_hash))
        : h("p", { id: "verify-result", class: "error" }, badge("broken"), ` at row ${v.broken_seq}: ${v.reason}`));
    } catch (e) {
      fill(result, h("p", { class: "error" }, e.message));
    } finally {
      verify.disabled = false;
    }
  });
  fill(main, title("Audit log", verify),
    result,
    card("Filter", filters([
      { name: "actor", label: "Actor", placeholder: "user:ana" },
      { name: "action", label: "Action", placeholder: "tasks.retry" },
      { name: "resource_type", label: "Resource type" },
      { name: "resource_id", label: "Resource id" },
      { name: "outcome", label: "Outcome", options: [["", "any"], ["ok", "ok"], ["denied", "denied"]] },
    ], query)),
    card("Entries, newest first", table({
      caption: "Audit entries",
      columns: [
        { label: "#", cell: (e) => e.seq, num: true },
        { label: "When", cell: (e) => time(e.at) },
        { label: "Actor", cell: (e) => [h("span", { class: "mono" }, e.actor), e.actor_role ? h("div", { class: "muted" }, e.actor_role) : null] },
        { label: "Action", cell: (e) => h("code", {}, e.action) },
        { label: "Outcome", cell: (e) => badge(e.outcome) },
        { label: "Resource", cell: (e) => [e.resource_type, e.resource_id ? [" ", h("code", {}, e.resource_id)] : null] },
        { label: "Details", cell: (e) => h("code", {}, JSON.stringify(e.details ?? {}).slice(0, 200)) },
        { label: "From", cell: (e) => e.ip ?? "–" },
      ],
      rows: page.entries,
      empty: "no entries match",
    }), pager(query, "before_seq", page.next_before_seq)));
}
