// Users (admins): accounts, roles, enabling and disabling, password resets.
import { get } from "../api.js";
import { action, apiForm, badge, card, fill, h, table, time, title } from "../ui.js";

const ONE = "/api/v1/users/{username}";
const ROLES = ["viewer", "operator", "admin"];

export async function render({ main }) {
  const { users } = await get("/api/v1/users");
  const reload = () => location.reload();
  fill(main, title("Users"),
    card("Accounts", table({
      caption: "Users",
      columns: [
        { label: "User", cell: (u) => [h("strong", {}, u.username), u.email ? h("div", { class: "muted" }, u.email) : null] },
        { label: "Role", cell: (u) => roleForm(u, reload) },
        { label: "State", cell: (u) => badge(u.active ? "active" : "disabled", u.active ? "ok" : "bad") },
        { label: "Last sign-in", cell: (u) => time(u.last_login_at) },
        { label: "Created", cell: (u) => time(u.created_at) },
        { label: "Actions", cell: (u) => h("div", { class: "title-row" },
            action({ label: u.active ? "Disable" : "Enable", method: "PATCH", pattern: ONE,
                     params: { username: u.username }, body: { active: !u.active }, done: reload,
                     name: `${u.active ? "disable" : "enable"} ${u.username}`,
                     confirm: u.active ? `Disable ${u.username}? Their tokens are revoked.` : null }),
            action({ label: "Reset password", method: "PATCH", pattern: ONE, name: `reset ${u.username}`,
                     params: { username: u.username }, done: reload,
                     body: () => ({ password: askPassword(u.username) }) }),
            action({ label: "Delete", method: "DELETE", pattern: ONE, danger: true, done: reload,
                     params: { username: u.username }, name: `delete ${u.username}`,
                     confirm: `Delete the user ${u.username}?` })) },
      ],
      rows: users,
    })),
    card("New user", apiForm({
      pattern: "/api/v1/users", submit: "Create user", name: "create-user",
      fields: [
        { name: "username", label: "Username", required: true },
        { name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password" },
        { name: "role", label: "Role", type: "select", options: ROLES, value: "viewer" },
        { name: "email", label: "Email (optional)", type: "email" },
      ],
      toBody: (v) => ({ username: v.username, password: v.password, role: v.role,
                        ...(v.email ? { email: v.email } : {}) }),
      done: reload,
    })));
}

function roleForm(u, done) {
  return apiForm({
    method: "PATCH", pattern: ONE, params: { username: u.username }, inline: true,
    submit: "Save role", name: `role ${u.username}`,
    fields: [{ name: "role", label: h("span", { class: "visually-hidden" }, `Role of ${u.username}`),
               type: "select", options: ROLES, value: u.role }],
    toBody: (v) => ({ role: v.role }), done,
  }) ?? badge(u.role);
}

function askPassword(username) {
  const password = window.prompt(`New password for ${username} (their tokens are revoked):`);
  if (!password) throw new Error("no password given");
  return password;
}
