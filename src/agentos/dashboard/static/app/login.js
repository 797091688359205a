// Sign in through the API's login: the token goes to localStorage (sent as a bearer
// with every call) and the server also sets an HttpOnly cookie, which page loads
// and the event stream use. After signing in, the same URL loads again.
import { ApiError, post, token } from "./api.js";
import { h } from "./dom.js";

export function bind(form) {
  const error = form.querySelector(".error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const done = await post("/api/v1/auth/login", {
        username: form.elements.username.value,
        password: form.elements.password.value,
        cookie: true,
      });
      token.set(done.token);
      location.reload();
    } catch (problem) {
      error.textContent = problem instanceof ApiError ? problem.message : String(problem);
      form.elements.password.focus();
    }
  });
}

// The same form, inside a page whose session has ended.
export function signInForm(reason) {
  const form = h("form", { id: "login" },
    h("label", { for: "username" }, "Username"),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    h("label", { for: "password" }, "Password"),
    h("input", { id: "password", name: "password", type: "password",
                 autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Sign in"),
    h("p", { id: "login-error", class: "error", role: "alert" }));
  bind(form);
  return h("section", { class: "card login" }, h("h1", {}, "Sign in"),
           h("p", { class: "muted" }, reason), form);
}

const page = document.getElementById("login");
if (page) {
  token.clear();  // the server refused what we had
  bind(page);
  page.elements.username.focus();
}
