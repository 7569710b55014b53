// The office for finance and support: a client of the public API only (web/shared/api.js).
// Each page is offered only to the roles the API lets use it; the API checks again anyway.
import { me, signIn, signOut, signedIn } from "/web/shared/api.js";
import { loadMessages, translate, t } from "/web/shared/i18n.js";
import { h, clear, field, route, start, showStatus } from "/web/shared/ui.js";
import { sayRefused } from "./kit.js";
import { reportsView } from "./reports.js";
import { reconciliationView, fxView, reviewsView } from "./finance.js";
import { lookupView, userView, ticketView } from "./people.js";
import { failuresView } from "./failures.js";

await loadMessages("office");
translate();

const STAFF = ["finance", "admin"];
const PAGES = [
  { hash: "#/reports", label: "nav.reports", roles: STAFF, view: reportsView },
  { hash: "#/reconciliation", label: "nav.reconciliation", roles: STAFF, view: reconciliationView },
  { hash: "#/fx", label: "nav.fx", roles: STAFF, view: fxView },
  { hash: "#/reviews", label: "nav.reviews", roles: STAFF, view: reviewsView },
  { hash: "#/lookup", label: "nav.lookup", roles: STAFF, view: lookupView },
  { hash: "#/failures", label: "nav.failures", roles: ["admin"], view: failuresView },
];
// Pages reached from others (an account, a ticket), with the roles of the page they belong to.
const DETAILS = [
  { hash: "#/users/:id", roles: STAFF, view: userView },
  { hash: "#/tickets/:id", roles: STAFF, view: ticketView },
];

const view = document.getElementById("view");
const nav = document.getElementById("nav");

function markCurrent() {
  for (const link of nav.querySelectorAll("a")) {
    if (location.hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function guarded(page, user) {
  return async (params) => {
    showStatus("");
    if (!page.roles.includes(user.role)) return h("p", {}, t("role.not_allowed"));
    return page.view(params, user);
  };
}

function enter(user) {
  const mine = PAGES.filter((p) => p.roles.includes(user.role));
  const out = h("button", { type: "button", class: "secondary", onclick: leave }, t("auth.sign_out"));
  clear(
    nav,
    mine.map((p) => h("a", { href: p.hash }, t(p.label))),
    h("span", { class: "who" }, h("span", {}, `${user.email} · ${t("role." + user.role)}`), out),
  );
  if (!mine.length) {
    clear(view, h("section", {}, h("h2", {}, t("role.not_staff_title")), h("p", {}, t("role.not_staff"))));
    return;
  }
  for (const page of [...PAGES, ...DETAILS]) route(page.hash, guarded(page, user));
  window.addEventListener("hashchange", markCurrent);
  if (!location.hash) history.replaceState(null, "", mine[0].hash);
  markCurrent();
  start(view, mine[0].hash);
}

async function leave() {
  await signOut();
  location.hash = "";
  location.reload();
}

function signInForm() {
  const email = h("input", { type: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit" }, t("auth.sign_in"));
  const form = h(
    "form",
    {},
    h("h2", {}, t("auth.title")),
    field(t("auth.email"), email),
    field(t("auth.password"), password),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.setAttribute("aria-busy", "true");
    try {
      const user = await signIn(email.value, password.value);
      showStatus("");
      enter(user);
    } catch (error) {
      sayRefused(error); // a wrong password or a disabled account: shown, not a page fault
    } finally {
      submit.removeAttribute("aria-busy");
    }
  });
  clear(view, h("section", {}, form));
  email.focus();
}

const user = signedIn() ? await me().catch(() => null) : null;
if (user) enter(user);
else signInForm();
