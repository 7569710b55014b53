// The catalog: what is on sale in my country now, in my language, with search and paging;
// above it, "continue watching" from my library's resume positions.
import { api, signedIn } from "/web/shared/api.js";
import { number, t } from "/web/shared/i18n.js";
import { action, field, h } from "/web/shared/ui.js";
import { artwork, clock, getTitle, myTickets, price, titlesPath } from "./common.js";

const PAGE = 24;

function poster(title) {
  return h(
    "a",
    { class: "poster", href: `#/title/${title.id}`, dataset: { title: title.id } },
    artwork(title),
    h("span", { class: "name" }, title.name),
    h("span", { class: "price" }, price(title)),
  );
}

async function continueWatching() {
  if (!signedIn()) return null;
  const started = (await myTickets()).filter((x) => x.state === "active" && x.resume_position_seconds > 0);
  if (!started.length) return null;
  const titles = await Promise.all(started.map((x) => getTitle(x.title_id).catch(() => null)));
  const items = started
    .map((ticket, i) => [ticket, titles[i]])
    .filter(([, title]) => title)
    .map(([ticket, title]) => {
      const runtime = title.runtime_seconds || 0;
      const share = runtime ? Math.min(100, (100 * ticket.resume_position_seconds) / runtime) : 0;
      // CSSOM, not a style attribute: the page's policy allows no inline styles.
      const bar = h("span");
      bar.style.width = `${share}%`;
      return h(
        "a",
        { class: "card", href: `#/watch/${ticket.id}`, dataset: { resume: ticket.id } },
        h("strong", {}, title.name),
        h("div", { class: "muted" }, t("store.resume_at", { time: clock(ticket.resume_position_seconds) })),
        runtime ? h("div", { class: "meter", "aria-hidden": "true" }, bar) : null,
      );
    });
  if (!items.length) return null;
  return h(
    "section",
    { "aria-labelledby": "continue-heading" },
    h("h2", { id: "continue-heading" }, t("store.continue_watching")),
    h("div", { class: "continue" }, items),
  );
}

export async function catalogView(params = {}) {
  const q = params.q || "";
  const grid = h("div", { class: "grid", id: "titles" });
  const count = h("p", { class: "muted", id: "count" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("store.more"));
  let offset = 0;

  const load = async () => {
    const page = await api(titlesPath("/v1/titles", { offset, limit: PAGE, ...(q ? { q } : {}) }));
    grid.append(...page.items.map(poster));
    offset += page.items.length;
    count.textContent = q
      ? t("store.results", { count: number(page.total), q })
      : t("store.on_sale", { count: number(page.total) });
    if (page.total === 0) grid.append(h("p", {}, q ? t("store.nothing_found") : t("store.nothing_on_sale")));
    more.hidden = offset >= page.total;
  };
  more.addEventListener("click", action(load));

  const input = h("input", { type: "search", name: "q", value: q, maxlength: 200, autocomplete: "off" });
  const search = h(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const text = input.value.trim();
        location.hash = text ? `#/search/${encodeURIComponent(text)}` : "#/";
      },
    },
    field(t("store.search"), input),
    h("button", { type: "submit" }, t("store.search_button")),
  );
  const [resume] = await Promise.all([q ? null : continueWatching().catch(() => null), load()]);
  return [
    resume,
    h("section", { "aria-labelledby": "catalog-heading" },
      h("h2", { id: "catalog-heading" }, q ? t("store.search_results") : t("store.catalog")),
      search, count, grid, h("div", { class: "actions" }, more)),
  ];
}
