// Small DOM helpers shared by the web apps: element building without innerHTML (text is
// always text, never markup), errors shown with their problem code, and hash routing.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";

// h("button", { type: "submit", onclick: f }, "Save") -> an element. Children: strings or nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// A labelled form field: every control has a <label> (keyboard and screen-reader users).
export function field(label, control) {
  const id = control.id || "f-" + Math.random().toString(36).slice(2, 9);
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

// Shows an error in the page's live region: the problem's detail and its stable code.
export function showError(error) {
  const region = document.getElementById("status");
  const text =
    error instanceof ApiError ? `${error.message} (${error.code})` : error?.message || String(error);
  if (region) {
    region.className = "status error";
    region.textContent = text;
  }
  console.error(error);
}

export function showStatus(text) {
  const region = document.getElementById("status");
  if (region) {
    region.className = "status";
    region.textContent = text;
  }
}

// Runs an async action from a button or form, disabling it meanwhile; errors go to showError.
export function action(fn) {
  return async (event) => {
    event?.preventDefault?.();
    const target = event?.currentTarget;
    if (target) target.setAttribute("aria-busy", "true");
    try {
      await fn(event);
    } catch (error) {
      showError(error);
    } finally {
      if (target) target.removeAttribute("aria-busy");
    }
  };
}

// Hash routes: route("#/titles/:id", view). start() renders the current hash and follows changes.
const routes = [];
export function route(pattern, view) {
  const names = [];
  const regex = new RegExp(
    "^" + pattern.replace(/:(\w+)/g, (_, n) => (names.push(n), "([^/]+)")) + "$",
  );
  routes.push({ regex, names, view });
}

export function start(outlet, fallbackHash) {
  const render = async () => {
    const hash = location.hash || fallbackHash;
    for (const { regex, names, view } of routes) {
      const match = regex.exec(hash);
      if (match) {
        const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
        try {
          clear(outlet, await view(params));
          outlet.focus({ preventScroll: true });
        } catch (error) {
          showError(error);
        }
        return;
      }
    }
    clear(outlet, h("p", {}, t("page.not_found")));
  };
  window.addEventListener("hashchange", render);
  return render();
}

export function table(headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
    ),
  );
}
