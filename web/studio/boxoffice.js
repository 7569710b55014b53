// Box office of the studio's titles per title, territory and day: the API's own SVG chart
// (fetched with the token, shown as a blob: image) and the report's rows as a table.
import { api, blobUrl } from "/web/shared/api.js";
import { money, number, t } from "/web/shared/i18n.js";
import { action, clear, field, h, table } from "/web/shared/ui.js";

const MAX_DAYS = 731; // boxoffice.reports.MAX_DAYS
const day = (d) => d.toISOString().slice(0, 10);

function amounts(row, key) {
  return row.local.length ? row.local.map((m) => money(m[key], m.currency)).join(" + ") : "—";
}

async function render(out, from, to) {
  const query = `date_from=${from}&date_to=${to}`;
  const [chart, report, titles] = await Promise.all([
    blobUrl(`/v1/studio/boxoffice/chart.svg?${query}`),
    api(`/v1/studio/boxoffice/report?${query}&group_by=title,territory,day&limit=500`),
    api("/v1/studio/titles?limit=100"),
  ]);
  const names = Object.fromEntries(titles.items.map((x) => [x.id, x.original_title]));
  // The report has a row for every day of the range; the table lists the days with activity.
  const active = report.rows.filter((r) => r.tickets_sold || r.views_started || r.local.some((m) => m.gross_minor || m.refunds_minor));
  const rows = active.map((r) => [
    names[r.keys.title] || r.keys.title,
    r.keys.territory || "—",
    r.keys.day || "—",
    h("span", { class: "num" }, number(r.tickets_sold)),
    h("span", { class: "num" }, number(r.qualified_views)),
    amounts(r, "gross_minor"),
    amounts(r, "net_sales_minor"),
  ]);
  clear(
    out,
    h("figure", { class: "chart" }, h("img", { src: chart, alt: t("boxoffice.chart_alt", { from, to }) })),
    rows.length
      ? table([t("boxoffice.title"), t("boxoffice.territory"), t("boxoffice.day"), t("boxoffice.tickets"), t("boxoffice.views"), t("boxoffice.gross"), t("boxoffice.net")], rows)
      : h("p", { class: "muted" }, t("boxoffice.none")),
    h("p", { class: "totals" }, t("boxoffice.totals", { tickets: number(report.totals.tickets_sold), views: number(report.totals.qualified_views), gross: amounts(report.totals, "gross_minor") })),
  );
}

export async function boxOfficeView() {
  const today = new Date();
  const from = h("input", { type: "date", value: day(new Date(today.getTime() - 29 * 86400_000)), required: true });
  const to = h("input", { type: "date", value: day(today), required: true });
  const out = h("div", { class: "boxoffice-out" });
  const refresh = action(async () => {
    const span = (new Date(to.value) - new Date(from.value)) / 86400_000;
    if (!(span >= 0)) throw new Error(t("boxoffice.range_invalid"));
    if (span >= MAX_DAYS) throw new Error(t("boxoffice.range_too_long", { days: MAX_DAYS }));
    await render(out, from.value, to.value);
  });
  await render(out, from.value, to.value);
  return h("section", { "aria-labelledby": "bo-h" },
    h("h2", { id: "bo-h" }, t("nav.boxoffice")),
    h("form", { class: "row", onsubmit: refresh }, field(t("boxoffice.from"), from), field(t("boxoffice.to"), to), h("button", { type: "submit" }, t("boxoffice.show"))),
    out,
  );
}
