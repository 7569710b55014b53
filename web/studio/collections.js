// Collections (festival sections): their own window and territories restrict where their
// titles are sold. Same checks as the API before sending; its refusals are shown with the code.
import { api } from "/web/shared/api.js";
import { date, t } from "/web/shared/i18n.js";
import { action, field, h, table } from "/web/shared/ui.js";
import { countriesOf } from "./windows.js";

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const COUNTRY = /^[A-Z]{2}$/;

function checkCollection(body) {
  if (!SLUG.test(body.slug)) return ["invalid_slug", t("title.slug_invalid")];
  for (const c of body.countries) if (!COUNTRY.test(c)) return ["unknown_country", t("windows.country_invalid", { country: c })];
  if (body.countries.length && !body.territory_mode) return ["territory_mode_required", t("collections.mode_required")];
  if (body.territory_mode === "listed" && !body.countries.length) return ["territories_empty", t("windows.territories_empty")];
  if (body.starts_at && body.ends_at && new Date(body.ends_at) <= new Date(body.starts_at)) return ["end_before_start", t("windows.end_before_start")];
  return null;
}

function memberControl(collection, titles, refresh) {
  const select = h("select", { "aria-label": t("collections.add_title") },
    titles.filter((x) => !collection.title_ids.includes(x.id)).map((x) => h("option", { value: x.id }, x.original_title)));
  const result = h("span", { role: "status" });
  return h("div", { class: "row" }, select,
    h("button", {
      type: "button",
      class: "secondary",
      onclick: action(async () => {
        if (!select.value) return;
        try {
          await api(`/v1/studio/collections/${collection.id}/titles/${select.value}`, { method: "PUT", body: { position: collection.title_ids.length } });
          await refresh();
        } catch (error) {
          result.className = "error";
          result.textContent = `${error.message} (${error.code})`;
        }
      }),
    }, t("collections.add_title")), result);
}

export async function collectionsView() {
  const section = h("section", { "aria-labelledby": "collections-h" });
  const refresh = async () => {
    const [collections, titles] = await Promise.all([api("/v1/studio/collections"), api("/v1/studio/titles?limit=100")]);
    const names = Object.fromEntries(titles.items.map((x) => [x.id, x.original_title]));
    section.replaceChildren(
      h("h2", { id: "collections-h" }, t("nav.collections")),
      collections.length
        ? table([t("collections.name"), t("windows.countries"), t("windows.starts"), t("windows.ends"), t("nav.titles")],
            collections.map((c) => [
              h("strong", {}, c.name),
              c.territory_mode ? `${t(`windows.mode.${c.territory_mode}`)}: ${c.countries.join(", ")}` : "—",
              c.starts_at ? date(c.starts_at) : "—",
              c.ends_at ? date(c.ends_at) : "—",
              h("div", {}, c.title_ids.map((id) => names[id] || id).join(", "), memberControl(c, titles.items, refresh)),
            ]))
        : h("p", { class: "muted" }, t("collections.none")),
      createForm(refresh),
    );
  };
  await refresh();
  return section;
}

function createForm(refresh) {
  const slug = h("input", { required: true, maxlength: 120 });
  const name = h("input", { required: true, maxlength: 300 });
  const mode = h("select", {}, h("option", { value: "" }, t("collections.no_restriction")),
    ["listed", "worldwide_except"].map((m) => h("option", { value: m }, t(`windows.mode.${m}`))));
  const countries = h("input", { placeholder: "US, CA" });
  const starts = h("input", { type: "datetime-local" });
  const ends = h("input", { type: "datetime-local" });
  const result = h("p", { role: "status" });
  return h("form", {
    class: "card",
    onsubmit: action(async () => {
      const body = {
        slug: slug.value,
        name: name.value,
        territory_mode: mode.value || null,
        countries: countriesOf(countries.value),
        starts_at: starts.value ? new Date(starts.value + ":00Z").toISOString() : null,
        ends_at: ends.value ? new Date(ends.value + ":00Z").toISOString() : null,
      };
      const refused = checkCollection(body);
      result.className = "error";
      if (refused) {
        result.textContent = `${refused[1]} (${refused[0]})`;
        return;
      }
      try {
        await api("/v1/studio/collections", { method: "POST", body });
        await refresh();
      } catch (error) {
        result.textContent = `${error.message} (${error.code})`;
      }
    }),
  },
  h("h3", {}, t("collections.new")),
  h("div", { class: "row" }, field(t("title.slug"), slug), field(t("collections.name"), name), field(t("windows.mode"), mode), field(t("windows.countries"), countries), field(t("windows.starts"), starts), field(t("windows.ends"), ends)),
  h("button", { type: "submit" }, t("collections.create")),
  result);
}
