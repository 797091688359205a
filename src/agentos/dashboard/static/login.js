// Sign in: the token goes to sessionStorage (for writes, sent as a bearer) and
// to an HttpOnly cookie the server sets (for page loads and the event stream).
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const r = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({
      username: document.getElementById("username").value,
      password: document.getElementById("password").value,
      cookie: true,
    }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    error.textContent = body.error ? body.error.message : r.statusText;
    return;
  }
  sessionStorage.setItem("agentos_token", body.token);
  location.replace("/");
});
