// Licence windows of a title in one validated table: territories, dates and prices per row.
// The checks here mirror the API's (catalog/service.py) so most mistakes are caught before a
// request; the API still decides, and its refusal is shown in the row with its code.
import { api } from "/web/shared/api.js";
import { t } from "/web/shared/i18n.js";
import { action, h } from "/web/shared/ui.js";

const COUNTRY = /^[A-Z]{2}$/;
const CURRENCY = /^[A-Z]{3}$/;
const MAX_PRICE_MINOR = 100_000_000; // catalog.service.MAX_PRICE_MINOR

export function minorDigits(currency) {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
}

export function countriesOf(text) {
  return text.split(/[\s,;]+/).map((c) => c.trim().toUpperCase()).filter(Boolean);
}

// "US 12.99 USD, FR 9.99 EUR" <-> [{country, amount_minor, currency}]
export function parsePrices(text) {
  const prices = [];
  for (const item of text.split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean)) {
    const [country = "", amount = "", currency = ""] = item.split(/\s+/);
    const cur = currency.toUpperCase();
    if (!COUNTRY.test(country.toUpperCase())) throw new RowError("unknown_country", t("windows.price_format", { item }));
    if (!CURRENCY.test(cur)) throw new RowError("unknown_currency", t("windows.price_format", { item }));
    let digits;
    try {
      digits = minorDigits(cur);
    } catch {
      throw new RowError("unknown_currency", t("windows.currency_unknown", { currency: cur }));
    }
    const value = Number(amount.replace(",", "."));
    if (!isFinite(value)) throw new RowError("price_not_positive", t("windows.price_format", { item }));
    prices.push({ country: country.toUpperCase(), amount_minor: Math.round(value * 10 ** digits), currency: cur });
  }
  return prices;
}

export function formatPrices(prices) {
  return prices
    .map((p) => `${p.country} ${(p.amount_minor / 10 ** minorDigits(p.currency)).toFixed(minorDigits(p.currency))} ${p.currency}`)
    .join(", ");
}

class RowError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The same rules as the API: territories, order of dates, prices positive, plausible, once
// per country and inside the window's territory.
export function validateWindow(w) {
  for (const c of w.countries) if (!COUNTRY.test(c)) throw new RowError("unknown_country", t("windows.country_invalid", { country: c }));
  if (w.territory_mode === "listed" && !w.countries.length) throw new RowError("territories_empty", t("windows.territories_empty"));
  if (!w.starts_at || !w.ends_at) throw new RowError("invalid_input", t("windows.dates_required"));
  if (new Date(w.ends_at) <= new Date(w.starts_at)) throw new RowError("end_before_start", t("windows.end_before_start"));
  const seen = new Set();
  for (const p of w.prices) {
    if (seen.has(p.country)) throw new RowError("duplicate_price", t("windows.duplicate_price", { country: p.country }));
    seen.add(p.country);
    if (p.amount_minor <= 0) throw new RowError("price_not_positive", t("windows.price_not_positive", { country: p.country }));
    if (p.amount_minor > MAX_PRICE_MINOR) throw new RowError("price_too_high", t("windows.price_too_high", { country: p.country }));
    const inside = w.territory_mode === "listed" ? w.countries.includes(p.country) : !w.countries.includes(p.country);
    if (!inside) throw new RowError("price_outside_territory", t("windows.price_outside", { country: p.country }));
  }
}

const localInput = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16) : "");
const isoOf = (value) => (value ? new Date(value + ":00Z").toISOString() : "");

function windowRow(title, window, tbody) {
  const isNew = !window.id;
  const mode = h("select", { "aria-label": t("windows.mode") },
    ["listed", "worldwide_except"].map((m) => h("option", { value: m, selected: m === window.territory_mode }, t(`windows.mode.${m}`))));
  const countries = h("input", { value: window.countries.join(", "), "aria-label": t("windows.countries"), placeholder: "US, CA" });
  const starts = h("input", { type: "datetime-local", value: localInput(window.starts_at), "aria-label": t("windows.starts") });
  const ends = h("input", { type: "datetime-local", value: localInput(window.ends_at), "aria-label": t("windows.ends") });
  const prices = h("input", { value: formatPrices(window.prices), "aria-label": t("windows.prices"), placeholder: "US 12.99 USD" });
  const result = h("div", { class: "row-result", role: "status" });
  const row = h("tr", { dataset: { window: window.id || "new" } });

  const fail = (error) => {
    result.className = "row-result error";
    result.textContent = `${error.message} (${error.code || "error"})`;
    row.setAttribute("aria-invalid", "true");
  };

  const save = action(async () => {
    result.textContent = "";
    row.removeAttribute("aria-invalid");
    let wanted;
    try {
      wanted = {
        territory_mode: mode.value,
        countries: countriesOf(countries.value),
        starts_at: isoOf(starts.value),
        ends_at: isoOf(ends.value),
        prices: parsePrices(prices.value),
      };
      validateWindow(wanted);
    } catch (error) {
      return fail(error);
    }
    try {
      if (isNew) {
        Object.assign(window, await api(`/v1/studio/titles/${title.id}/windows`, { method: "POST", body: wanted }));
        row.dataset.window = window.id;
      } else {
        const base = `/v1/studio/titles/${title.id}/windows/${window.id}`;
        // Prices leaving the territory go first, so the new territory is accepted.
        const keep = new Set(wanted.prices.map((p) => p.country));
        for (const old of window.prices) if (!keep.has(old.country)) await api(`${base}/prices/${old.country}`, { method: "DELETE" });
        await api(base, { method: "PATCH", body: { territory_mode: wanted.territory_mode, countries: wanted.countries, starts_at: wanted.starts_at, ends_at: wanted.ends_at } });
        let latest = null;
        for (const p of wanted.prices) latest = await api(`${base}/prices/${p.country}`, { method: "PUT", body: { amount_minor: p.amount_minor, currency: p.currency } });
        Object.assign(window, latest || (await api(`/v1/studio/titles/${title.id}`)).windows.find((w) => w.id === window.id));
      }
      prices.value = formatPrices(window.prices);
      result.className = "row-result ok";
      result.textContent = t("status.saved");
      removeButton.hidden = false;
    } catch (error) {
      fail(error);
    }
  });

  const removeButton = h("button", {
    type: "button",
    class: "secondary",
    hidden: isNew,
    onclick: action(async () => {
      try {
        await api(`/v1/studio/titles/${title.id}/windows/${window.id}`, { method: "DELETE" });
        row.remove();
      } catch (error) {
        fail(error);
      }
    }),
  }, t("windows.delete"));

  row.append(
    h("td", { "data-label": t("windows.mode") }, mode),
    h("td", { "data-label": t("windows.countries") }, countries),
    h("td", { "data-label": t("windows.starts") }, starts),
    h("td", { "data-label": t("windows.ends") }, ends),
    h("td", { "data-label": t("windows.prices") }, prices),
    h("td", {}, h("button", { type: "button", onclick: save }, t("action.save")), " ", removeButton, result),
  );
  tbody.append(row);
  return row;
}

export async function windowsView({ id }) {
  const title = await api(`/v1/studio/titles/${id}`);
  const tbody = h("tbody");
  for (const w of title.windows) windowRow(title, w, tbody);
  const add = () => {
    const now = new Date();
    const later = new Date(now.getTime() + 90 * 86400_000);
    const row = windowRow(title, { territory_mode: "listed", countries: [], starts_at: now.toISOString(), ends_at: later.toISOString(), prices: [] }, tbody);
    row.querySelector("input")?.focus();
  };
  if (!title.windows.length) add();
  return h("div", {},
    h("p", {}, h("a", { href: `#/titles/${id}` }, "← " + title.original_title)),
    h("section", { "aria-labelledby": "windows-h" },
      h("h2", { id: "windows-h" }, t("windows.title", { title: title.original_title })),
      h("p", { class: "muted" }, t("windows.hint")),
      h("div", { class: "table-wrap" }, h("table", { class: "windows stack" },
        h("thead", {}, h("tr", {}, [t("windows.mode"), t("windows.countries"), t("windows.starts"), t("windows.ends"), t("windows.prices"), ""].map((x) => h("th", { scope: "col" }, x)))),
        tbody,
      )),
      h("button", { type: "button", class: "secondary", onclick: add }, t("windows.add")),
    ),
  );
}
