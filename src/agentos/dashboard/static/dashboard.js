// The dashboard talks to the same REST API as the CLI; no framework, no build.
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// reads carry the session cookie; a token kept from sign-in goes along as a bearer
function authHeaders() {
  const token = sessionStorage.getItem("agentos_token");
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, asText = false, init = {}) {
  const r = await fetch(path, { ...init, headers: { Accept: "application/json", ...authHeaders() } });
  if (r.status === 401) {  // expired or revoked: back to the sign-in form
    sessionStorage.removeItem("agentos_token");
    location.replace("/");
    throw new Error("signed out");
  }
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new Error(body.error ? body.error.message : r.statusText);
  }
  return asText ? r.text() : r.json();
}

async function showStatus() {
  const el = $("status");
  try {
    const ready = await api("/ready");
    el.textContent = `ready · ${ready.database.dialect} · schema ${ready.schema.current}`;
    el.className = "pill ok";
  } catch (e) {
    el.textContent = `not ready: ${e.message}`;
    el.className = "pill bad";
  }
}

async function listAgents() {
  const params = new URLSearchParams();
  if ($("q").value) params.set("q", $("q").value);
  if ($("status-filter").value) params.set("status", $("status-filter").value);
  const body = $("agents");
  try {
    const { agents } = await api(`/api/v1/agents?${params}`);
    body.innerHTML = agents.length ? agents.map((a) => `
      <tr data-name="${esc(a.name)}">
        <td>${esc(a.display_name || a.name)}<br><small>${esc(a.name)}</small></td>
        <td>${esc(a.version)}</td>
        <td class="st-${esc(a.status)}">${esc(a.status)}</td>
        <td>${esc(a.role)}</td>
        <td>${a.tags.map(esc).join(", ")}</td>
        <td>${a.triggers.map(esc).join(", ")}</td>
      </tr>`).join("") : `<tr><td colspan="6">no agents yet: agentos agents import --template qa-manager</td></tr>`;
  } catch (e) {
    body.innerHTML = `<tr><td colspan="6">${esc(e.message)}</td></tr>`;
  }
}

async function showAgent(name) {
  const [{ versions }, yaml] = await Promise.all([
    api(`/api/v1/agents/${encodeURIComponent(name)}/versions`),
    api(`/api/v1/agents/${encodeURIComponent(name)}/export`, true),
  ]);
  $("detail").hidden = false;
  $("detail-title").textContent = name;
  $("versions").innerHTML = versions.map((v) =>
    `<span class="st-${esc(v.status)}">${esc(v.version)} (${esc(v.status)})</span>`).join(" · ");
  $("definition").textContent = yaml;
}

$("agents").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-name]");
  if (row) showAgent(row.dataset.name).catch((err) => alert(err.message));
});
let timer;
$("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(listAgents, 200); });
$("status-filter").addEventListener("change", listAgents);
$("logout").addEventListener("click", async () => {
  await api("/api/v1/auth/logout", true, { method: "POST" }).catch(() => {});
  sessionStorage.removeItem("agentos_token");
  location.replace("/");
});
api("/api/v1/auth/me").then((me) => { $("who").textContent = `${me.actor} (${me.role})`; })
  .catch(() => {});
showStatus();
listAgents();
setInterval(showStatus, 10000);
