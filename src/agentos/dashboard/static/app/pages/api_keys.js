// API keys (admins): credentials for workers and scripts; a new key is shown once.
import { get } from "../api.js";
import { action, apiForm, badge, card, fill, filters, h, table, time, title } from "../ui.js";

export async function render({ main, query }) {
  const revoked = query.get("include_revoked") === "true";
  const { api_keys: keys } = await get("/api/v1/api-keys", { include_revoked: revoked || undefined });
  const reload = () => location.reload();
  const shown = h("div", { "aria-live": "polite" });
  fill(main, title("API keys"),
    card("Filter", filters([{ name: "include_revoked", label: "Show",
                              options: [["", "keys in use"], ["true", "revoked ones too"]] }], query)),
    card("Keys", table({
      caption: "API keys",
      columns: [
        { label: "Name", cell: (k) => h("strong", {}, k.name) },
        { label: "Prefix", cell: (k) => h("code", {}, k.prefix) },
        { label: "Role", cell: (k) => k.role },
        { label: "State", cell: (k) => badge(k.revoked_at ? "revoked" : expired(k) ? "expired" : "active") },
        { label: "Expires", cell: (k) => (k.expires_at ? time(k.expires_at) : "never") },
        { label: "Last used", cell: (k) => time(k.last_used_at) },
        { label: "Created", cell: (k) => [time(k.created_at), h("div", { class: "muted" }, k.created_by ?? "")] },
        { label: "Actions", cell: (k) => (k.revoked_at ? "–" : action({
            label: "Revoke", method: "DELETE", pattern: "/api/v1/api-keys/{key_id}", danger: true,
            params: { key_id: k.id }, name: `revoke ${k.name}`, done: reload,
            confirm: `Revoke the key ${k.name}? Every server refuses it within seconds.` })) },
      ],
      rows: keys,
      empty: "no API keys",
    })),
    card("New key", apiForm({
      pattern: "/api/v1/api-keys", submit: "Create key", name: "create-key",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "role", label: "Role", type: "select", options: ["viewer", "operator", "admin"], value: "operator" },
        { name: "days", label: "Expires in (days; empty: never)", type: "number", value: "90", min: 1, max: 3650 },
      ],
      toBody: (v) => ({ name: v.name, role: v.role,
                        ...(v.days ? { expires_in_days: Number(v.days) } : { never_expires: true }) }),
      done: (key) => fill(shown, h("div", { class: "banner", role: "status" },
        "The new key, shown this once: ", h("code", { id: "new-key" }, key.key),
        " — store it now. ", h("a", { href: location.href }, "Done"))),
    }), shown));
}

function expired(k) {
  return k.expires_at && Date.parse(k.expires_at) < Date.now();
}
