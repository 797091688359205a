// Who is signed in and what their role may call, as the server wrote it into the
// page (from the same access rules that check every request).

const element = document.getElementById("session");
export const session = element ? JSON.parse(element.textContent) : { allowed: [] };
const allowed = new Set(session.allowed);

// can("POST", "/api/v1/tasks/{task_id}/retry"): whether to offer that action
export function can(method, pattern) {
  return allowed.has(`${method} ${pattern}`);
}

const RANK = { viewer: 0, operator: 1, admin: 2 };

// whether the signed-in role is at least ``role`` (an approval's own role decides it)
export function atLeast(role) {
  return (RANK[session.role] ?? -1) >= (RANK[role] ?? 99);
}
