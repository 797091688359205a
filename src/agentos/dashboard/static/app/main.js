// Draws the page the server named (data-page) with its script under pages/.
import { onSignedOut, post, token } from "./api.js";
import { fill, h } from "./dom.js";
import { signInForm } from "./login.js";
import { errorBox } from "./ui.js";

const main = document.getElementById("main");
const params = JSON.parse(main.dataset.params || "{}");
let ended = false;

onSignedOut(() => {
  if (ended) return;
  ended = true;
  fill(main, signInForm("Your session has ended (or this tab has no token): sign in again."));
  main.querySelector("#username")?.focus();
});

document.getElementById("logout")?.addEventListener("click", async () => {
  await post("/api/v1/auth/logout").catch(() => {});
  token.clear();
  location.reload();  // the cookie is gone: the sign-in form, on this same URL
});

try {
  const page = await import(`./pages/${main.dataset.page}.js`);
  await page.render({ main, params, query: new URLSearchParams(location.search) });
} catch (e) {
  if (!ended) {
    fill(main, h("h1", {}, document.title.split(" · ")[0]), errorBox(e));
    main.dataset.failed = "true";
  }
}
main.dataset.ready = "true";  // the browser tests wait for this
