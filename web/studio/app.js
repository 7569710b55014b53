// The studio portal: a client of the public API only (web/shared/api.js). Hash routes:
// #/titles, #/titles/:id, #/titles/:id/windows, #/releases/:id, #/collections, #/boxoffice,
// #/webhook. What a signed-in user may see or change is exactly what /v1/studio allows.
import { me, signedIn, signIn, signOut } from "/web/shared/api.js";
import { loadMessages, translate, t } from "/web/shared/i18n.js";
import { action, clear, field, h, route, showStatus, start } from "/web/shared/ui.js";
import { boxOfficeView } from "./boxoffice.js";
import { releaseView } from "./release.js";
import { collectionsView } from "./collections.js";
import { titlesView, titleView } from "./titles.js";
import { webhookView } from "./webhook.js";
import { windowsView } from "./windows.js";

await loadMessages("studio");
translate();

const view = document.getElementById("view");
const nav = document.getElementById("nav");

function navigation(account) {
  const link = (hash, key) => h("a", { href: hash }, t(key));
  clear(
    nav,
    link("#/titles", "nav.titles"),
    link("#/collections", "nav.collections"),
    link("#/boxoffice", "nav.boxoffice"),
    link("#/webhook", "nav.webhook"),
    h("span", { class: "muted" }, account.email),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: action(async () => {
          await signOut();
          location.hash = "";
          location.reload();
        }),
      },
      t("auth.sign_out"),
    ),
  );
}

function signInForm() {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  return h(
    "form",
    {
      class: "card",
      onsubmit: action(async () => {
        await signIn(email.value, password.value);
        await boot();
      }),
    },
    h("h2", {}, t("studio.sign_in_title")),
    field(t("auth.email"), email),
    field(t("auth.password"), password),
    h("button", { type: "submit" }, t("auth.sign_in")),
  );
}

let started = false;

async function boot() {
  if (!signedIn()) {
    clear(nav);
    clear(view, signInForm());
    return;
  }
  const account = await me();
  if (account.role !== "studio" && account.role !== "admin") {
    await signOut();
    clear(view, h("p", { class: "error" }, t("studio.not_studio")), signInForm());
    return;
  }
  showStatus("");
  navigation(account);
  if (started) {
    window.dispatchEvent(new HashChangeEvent("hashchange")); // signed in again: render the page
    return;
  }
  started = true;
  route("#/titles", titlesView);
  route("#/titles/:id", titleView);
  route("#/titles/:id/windows", windowsView);
  route("#/releases/:id", releaseView);
  route("#/collections", collectionsView);
  route("#/boxoffice", boxOfficeView);
  route("#/webhook", webhookView);
  await start(view, "#/titles");
}

boot().catch((error) => {
  clear(view, signInForm());
  showStatus(error.message);
});
