// UI text: the server picks the language from Accept-Language and writes it into <html lang>
// (api/routes/web.py); here we load web/i18n/shared/<lang>.json and web/i18n/<app>/<lang>.json,
// falling back to English key by key, and format numbers, money and dates for that locale.

let messages = {};
let fallback = {};
export let locale = document.documentElement.lang || "en";

async function load(path) {
  const response = await fetch(path);
  return response.ok ? response.json() : {};
}

export async function loadMessages(app) {
  const lang = locale;
  const [sharedEn, appEn, shared, own] = await Promise.all([
    load(`/web/i18n/shared/en.json`),
    load(`/web/i18n/${app}/en.json`),
    lang === "en" ? {} : load(`/web/i18n/shared/${lang}.json`),
    lang === "en" ? {} : load(`/web/i18n/${app}/${lang}.json`),
  ]);
  fallback = { ...sharedEn, ...appEn };
  messages = { ...shared, ...own };
}

// t("upload.speed", { speed: "3 MB/s" }) -> the text with {speed} filled in.
export function t(key, values = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

// Static markup: <span data-i18n="nav.titles"></span>, <input data-i18n-label="form.email">.
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function money(minor, currency) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat(locale, { style: "currency", currency }).format(minor / 10 ** digits);
}

export function number(value, options = {}) {
  return new Intl.NumberFormat(locale, options).format(value);
}

export function date(value, options = { dateStyle: "medium" }) {
  return new Intl.DateTimeFormat(locale, options).format(new Date(value));
}

export function bytes(value) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  return `${number(value, { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}
