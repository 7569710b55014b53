// What the storefront's pages share: titles in the page's language, my tickets, posters.
import { ApiError, api, signedIn } from "/web/shared/api.js";
import { locale, money, t } from "/web/shared/i18n.js";
import { h } from "/web/shared/ui.js";

// The catalog answers in the page's language (the same negotiation as the shell's).
export function titlesPath(path, params = {}) {
  const query = new URLSearchParams({ lang: locale, ...params });
  return `${path}?${query}`;
}

export function getTitle(id) {
  return api(titlesPath(`/v1/titles/${encodeURIComponent(id)}`));
}

// My tickets (newest first); empty when signed out.
export async function myTickets() {
  if (!signedIn()) return [];
  const page = await api("/v1/me/tickets?limit=100");
  return page.items;
}

// The ticket that lets me watch this title now, if any.
export function watchable(tickets, titleId) {
  return tickets.find((x) => x.title_id === titleId && x.state === "active") || null;
}

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hours ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function price(title) {
  return money(title.price.amount_minor, title.price.currency);
}

// The poster: stored artwork is served by the API in the locale the text came in, a public
// artwork_url (the media CDN) is used as it is; a drawn stand-in with the initial when there
// is none (or it fails to load).
export function artwork(title) {
  const standIn = () => h("div", { class: "art", "aria-hidden": "true" }, (title.name || "?").slice(0, 1));
  const src = title.artwork_key
    ? `/v1/titles/${encodeURIComponent(title.id)}/artwork?${new URLSearchParams({ lang: title.locale })}`
    : title.artwork_url;
  if (!src) return standIn();
  const img = h("img", { class: "art", src, alt: "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(standIn()));
  return img;
}

// After signing in, go back where the viewer was going (a title page, a checkout).
const AFTER = "pc-store-after";
export function rememberWhere(hash) {
  sessionStorage.setItem(AFTER, hash);
}
export function goBackAfterSignIn() {
  const hash = sessionStorage.getItem(AFTER) || "#/";
  sessionStorage.removeItem(AFTER);
  location.hash = hash;
}

export function signInFirst(hash) {
  return h(
    "section",
    {},
    h("p", {}, t("store.sign_in_first")),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: "#/signin", onclick: () => rememberWhere(hash) }, t("auth.sign_in")),
      h("a", { href: "#/signup", onclick: () => rememberWhere(hash) }, t("account.sign_up")),
    ),
  );
}

// An error that did not come as a problem+json answer (a declined card in the payment's
// outcome, a player refusal), shown like one: its message and its stable code.
export function problem(message, code, status = 0) {
  return new ApiError(status, { detail: message, code });
}

// A confirmation for the page that comes next ("verified", "deleted"): the status line is
// cleared on every route change, and this text is shown instead, once.
let pending = "";
export function flash(text) {
  pending = text;
}
export function takeFlash() {
  const text = pending;
  pending = "";
  return text;
}
