// The storefront: a client of the public API only (web/shared/api.js). Hash routes:
// #/ the catalog, #/search/<text>, #/title/<id>, #/buy/<id>, #/watch/<ticket>,
// #/signin, #/signup, #/verify/<email>, #/reset, #/account.
import { signedIn } from "/web/shared/api.js";
import { loadMessages, translate, t } from "/web/shared/i18n.js";
import { clear, h, route, showStatus, start } from "/web/shared/ui.js";
import { accountView, resetView, signInView, signUpView, verifyView } from "./account.js";
import { catalogView } from "./catalog.js";
import { checkoutView } from "./checkout.js";
import { titleView } from "./title.js";
import { leave, watchView } from "./watch.js";
import { takeFlash } from "./common.js";

await loadMessages("store");
translate();

function nav() {
  clear(
    document.getElementById("nav"),
    h("a", { href: "#/" }, t("store.catalog")),
    signedIn()
      ? h("a", { href: "#/account", id: "nav-account" }, t("account.heading"))
      : h("a", { href: "#/signin", id: "nav-sign-in" }, t("auth.sign_in")),
  );
}

// Leaving the player (another route, or the page) ends its session after a last heartbeat.
// Registered before the router's own listener, so it runs first.
window.addEventListener("hashchange", () => {
  leave();
  // The status line belongs to the page it was written on, except a flashed confirmation.
  showStatus(takeFlash());
  nav();
});
window.addEventListener("pagehide", () => {
  leave();
});

route("#/", catalogView);
route("#/search/:q", catalogView);
route("#/title/:id", titleView);
route("#/buy/:id", checkoutView);
route("#/watch/:ticket", watchView);
route("#/signin", signInView);
route("#/signup", signUpView);
route("#/verify/:email", verifyView);
route("#/reset", resetView);
route("#/account", accountView);

nav();
await start(document.getElementById("view"), "#/");
