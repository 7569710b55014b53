// The office's small building blocks: sections, fact lists, a modal question, downloads made
// from authenticated requests, and amounts typed in major units turned into minor units.
import { ApiError, request } from "/web/shared/api.js";
import { t, date } from "/web/shared/i18n.js";
import { h, field, table } from "/web/shared/ui.js";

// A refusal in words, with its stable code (what support quotes when asking for help).
export function problemText(error) {
  return error instanceof ApiError ? `${error.message} (${error.code})` : error?.message || String(error);
}

// A refusal the user caused (a wrong password, a rule of the API) shown in the page's live
// region. Unlike showError it is not logged as a fault of the page.
export function sayRefused(error) {
  const region = document.getElementById("status");
  region.className = "status error";
  region.textContent = problemText(error);
}

export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// [[label, value], ...] as a description list; values may be nodes.
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function when(value) {
  return value ? date(value, { dateStyle: "medium", timeStyle: "short" }) : "—";
}

export function code(text) {
  return text ? h("code", {}, text) : "—";
}

export function isoDay(offsetDays = 0) {
  const day = new Date(Date.now() + offsetDays * 86_400_000);
  return day.toISOString().slice(0, 10);
}

// Asks in a modal dialog. ``fields``: [{ name, label, control }]; ``run(values)`` does the
// work: a refusal stays in the dialog (with its code) so the user can correct and retry.
// Resolves with run's result, or null when cancelled.
export function ask({ title, fields, submitLabel, run }) {
  return new Promise((resolve) => {
    const error = h("p", { class: "status error", role: "alert" });
    const titleId = "dlg-" + Math.random().toString(36).slice(2, 9);
    const submit = h("button", { type: "submit" }, submitLabel);
    const cancel = h("button", { type: "button", class: "secondary" }, t("action.cancel"));
    const form = h(
      "form",
      {},
      h("h2", { id: titleId }, title),
      fields.map((f) => field(f.label, Object.assign(f.control, { name: f.name }))),
      error,
      h("div", { class: "actions" }, submit, cancel),
    );
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(fields.map((f) => [f.name, f.control.type === "checkbox" ? f.control.checked : f.control.value]));
      submit.setAttribute("aria-busy", "true");
      try {
        result = await run(values);
        dialog.close();
      } catch (e) {
        error.textContent = problemText(e);
      } finally {
        submit.removeAttribute("aria-busy");
      }
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// Fetches a file with the signed-in token and hands it to the browser as a download.
export async function download(path, fallbackName) {
  const response = await request(path, { headers: { Accept: "*/*" } });
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function minorDigits(currency) {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
}

// "3.50" or "3,50" in the currency's major unit -> 350 minor units; null if not a positive amount.
export function toMinor(text, currency) {
  const value = Number(String(text).trim().replace(",", "."));
  if (!Number.isFinite(value) || value <= 0) return null;
  return Math.round(value * 10 ** minorDigits(currency));
}

export function toMajor(minor, currency) {
  return (minor / 10 ** minorDigits(currency)).toFixed(minorDigits(currency));
}

// An API enum value in words (t("ticket_state.active")); the value itself when the UI has no
// text for it yet, so a value added to the API later still shows.
export function named(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

// A table that becomes one card per row at phone width (office.css): each cell carries its
// column's name, shown before it when the header row is hidden.
export function cards(headers, rows) {
  const wrap = table(headers, rows);
  wrap.querySelector("table").classList.add("cards");
  for (const row of wrap.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (headers[i]) cell.dataset.label = headers[i];
    });
  }
  return wrap;
}
