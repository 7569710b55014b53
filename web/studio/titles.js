// Titles: the studio's list, a new title, and one title's editor (details, localized metadata
// with artwork, releases).
import { api, blobUrl, request } from "/web/shared/api.js";
import { date, t } from "/web/shared/i18n.js";
import { action, clear, field, h, showStatus, table } from "/web/shared/ui.js";

const ARTWORK_TYPES = ["image/jpeg", "image/png", "image/webp"];
const ARTWORK_MAX_BYTES = 10 * 1024 * 1024; // the API's limit (catalog/artwork.py)
const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const LOCALE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

export function statusBadge(status) {
  const tone = status === "ready" ? "ok" : status === "failed" ? "error" : "warn";
  return h("span", { class: `badge ${tone}`, dataset: { status } }, t(`release.status.${status}`));
}

// Client-side checks that mirror the API's; the API still decides (its code is shown).
function invalid(input, message) {
  input.setAttribute("aria-invalid", "true");
  input.focus();
  throw new Error(message);
}

function newTitleForm() {
  const slug = h("input", { name: "slug", required: true, maxlength: 120, placeholder: "the-lantern-keeper" });
  const name = h("input", { name: "original_title", required: true, maxlength: 300 });
  const language = h("input", { name: "original_language", required: true, maxlength: 35, value: "en" });
  return h(
    "form",
    {
      class: "card",
      onsubmit: action(async () => {
        if (!SLUG.test(slug.value)) invalid(slug, t("title.slug_invalid"));
        if (!LOCALE.test(language.value)) invalid(language, t("field.locale_invalid"));
        const title = await api("/v1/studio/titles", {
          method: "POST",
          body: { slug: slug.value, original_title: name.value, original_language: language.value },
        });
        location.hash = `#/titles/${title.id}`;
      }),
    },
    h("h3", {}, t("title.new")),
    h("div", { class: "row" }, field(t("title.slug"), slug), field(t("title.original_title"), name), field(t("title.original_language"), language)),
    h("button", { type: "submit" }, t("title.create")),
  );
}

export async function titlesView() {
  const page = await api("/v1/studio/titles?limit=100");
  const rows = page.items.map((title) => [
    h("a", { href: `#/titles/${title.id}` }, title.original_title),
    title.slug,
    title.localizations.map((l) => l.locale).join(", ") || "—",
    String(title.windows.length),
    date(title.created_at),
  ]);
  return h(
    "section",
    { "aria-labelledby": "titles-h" },
    h("h2", { id: "titles-h" }, t("nav.titles")),
    page.items.length
      ? table([t("title.original_title"), t("title.slug"), t("title.locales"), t("title.windows"), t("title.created")], rows)
      : h("p", { class: "muted" }, t("title.none")),
    newTitleForm(),
  );
}

function detailsForm(title) {
  const name = h("input", { name: "original_title", value: title.original_title, required: true, maxlength: 300 });
  const language = h("input", { name: "original_language", value: title.original_language, maxlength: 35 });
  const runtime = h("input", { name: "runtime", type: "number", min: 0, max: 10080, value: title.runtime_seconds ? Math.round(title.runtime_seconds / 60) : "" });
  const genres = h("input", { name: "genres", value: title.genres.join(", ") });
  return h(
    "form",
    {
      class: "card",
      onsubmit: action(async () => {
        if (!LOCALE.test(language.value)) invalid(language, t("field.locale_invalid"));
        await api(`/v1/studio/titles/${title.id}`, {
          method: "PATCH",
          body: {
            original_title: name.value,
            original_language: language.value,
            runtime_seconds: runtime.value ? Number(runtime.value) * 60 : null,
            genres: genres.value.split(",").map((g) => g.trim()).filter(Boolean),
          },
        });
        showStatus(t("status.saved"));
      }),
    },
    h("h3", {}, t("title.details")),
    h("div", { class: "row" }, field(t("title.original_title"), name), field(t("title.original_language"), language), field(t("title.runtime_minutes"), runtime), field(t("title.genres"), genres)),
    h("button", { type: "submit" }, t("action.save")),
  );
}

function artworkControl(title, localization, preview) {
  const input = h("input", { type: "file", accept: ARTWORK_TYPES.join(","), name: `artwork-${localization.locale}` });
  input.addEventListener(
    "change",
    action(async () => {
      const file = input.files[0];
      if (!file) return;
      if (!ARTWORK_TYPES.includes(file.type)) invalid(input, t("artwork.type_invalid"));
      if (file.size > ARTWORK_MAX_BYTES) invalid(input, t("artwork.too_large"));
      const response = await request(`/v1/studio/titles/${title.id}/localizations/${encodeURIComponent(localization.locale)}/artwork`, {
        method: "PUT",
        body: file,
        raw: true,
        headers: { "Content-Type": file.type },
      });
      Object.assign(localization, await response.json());
      await showArtwork(title, localization, preview);
      showStatus(t("artwork.uploaded"));
    }),
  );
  return field(t("artwork.upload"), input);
}

async function showArtwork(title, localization, preview) {
  if (localization.artwork_key) {
    const url = await blobUrl(`/v1/studio/titles/${title.id}/localizations/${encodeURIComponent(localization.locale)}/artwork`);
    clear(preview, h("img", { src: url, alt: t("artwork.alt", { name: localization.name }), class: "poster" }));
  } else if (localization.artwork_url) {
    clear(preview, h("img", { src: localization.artwork_url, alt: t("artwork.alt", { name: localization.name }), class: "poster" }));
  }
}

function localizationCard(title, localization) {
  const name = h("input", { value: localization.name, required: true, maxlength: 300 });
  const tagline = h("input", { value: localization.tagline || "", maxlength: 500 });
  const synopsis = h("textarea", { rows: 3, maxlength: 10000 }, localization.synopsis || "");
  const preview = h("div", { class: "poster-box" });
  showArtwork(title, localization, preview).catch(() => {});
  return h(
    "form",
    {
      class: "card localization",
      dataset: { locale: localization.locale },
      onsubmit: action(async () => {
        if (!name.value.trim()) invalid(name, t("localization.name_required"));
        await api(`/v1/studio/titles/${title.id}/localizations/${encodeURIComponent(localization.locale)}`, {
          method: "PUT",
          body: {
            name: name.value,
            tagline: tagline.value || null,
            synopsis: synopsis.value || null,
            // PUT replaces the whole localization: keep the poster it has.
            artwork_key: localization.artwork_key || undefined,
            artwork_url: localization.artwork_url || undefined,
          },
        });
        showStatus(t("status.saved"));
      }),
    },
    h("h4", {}, localization.locale),
    h("div", { class: "split" }, h("div", {}, field(t("localization.name"), name), field(t("localization.tagline"), tagline), field(t("localization.synopsis"), synopsis)), h("div", {}, preview, artworkControl(title, localization, preview))),
    h("button", { type: "submit" }, t("action.save")),
  );
}

function addLocalizationForm(title, list) {
  const locale = h("input", { name: "locale", required: true, maxlength: 35, placeholder: "zh-Hant" });
  const name = h("input", { name: "name", required: true, maxlength: 300 });
  return h(
    "form",
    {
      class: "row",
      onsubmit: action(async () => {
        if (!LOCALE.test(locale.value)) invalid(locale, t("field.locale_invalid"));
        if (!name.value.trim()) invalid(name, t("localization.name_required"));
        const row = await api(`/v1/studio/titles/${title.id}/localizations/${encodeURIComponent(locale.value)}`, {
          method: "PUT",
          body: { name: name.value },
        });
        list.append(localizationCard(title, row));
        locale.value = name.value = "";
      }),
    },
    field(t("localization.locale"), locale),
    field(t("localization.name"), name),
    h("button", { type: "submit" }, t("localization.add")),
  );
}

function releasesCard(title, releases) {
  const label = h("input", { name: "label", value: t("release.default_label"), required: true, maxlength: 200 });
  const rows = releases.map((r) => [
    h("a", { href: `#/releases/${r.id}` }, r.label),
    statusBadge(r.status),
    date(r.created_at, { dateStyle: "medium", timeStyle: "short" }),
  ]);
  return h(
    "section",
    { "aria-labelledby": "releases-h" },
    h("h3", { id: "releases-h" }, t("release.list")),
    rows.length ? table([t("release.label"), t("release.status"), t("title.created")], rows) : h("p", { class: "muted" }, t("release.none")),
    h(
      "form",
      {
        class: "row",
        onsubmit: action(async () => {
          const release = await api(`/v1/studio/titles/${title.id}/releases`, { method: "POST", body: { label: label.value } });
          location.hash = `#/releases/${release.id}`;
        }),
      },
      field(t("release.label"), label),
      h("button", { type: "submit" }, t("release.create")),
    ),
  );
}

export async function titleView({ id }) {
  const [title, releases] = await Promise.all([
    api(`/v1/studio/titles/${id}`),
    api(`/v1/studio/releases?title_id=${id}&limit=100`),
  ]);
  const list = h("div", { class: "localizations" }, title.localizations.map((l) => localizationCard(title, l)));
  return h(
    "div",
    {},
    h("p", {}, h("a", { href: "#/titles" }, "← " + t("nav.titles"))),
    h("h2", {}, title.original_title),
    h("p", {}, h("a", { href: `#/titles/${id}/windows`, class: "button" }, t("windows.open"))),
    detailsForm(title),
    h("section", { "aria-labelledby": "loc-h" }, h("h3", { id: "loc-h" }, t("localization.list")), list, addLocalizationForm(title, list)),
    releasesCard(title, releases),
  );
}
