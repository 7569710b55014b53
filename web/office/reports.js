// Box-office reports over any range and grouping, as a table, and the same report as a file
// (CSV, XLSX or JSON from /v1/finance/boxoffice/report) downloaded with the signed-in token.
import { api } from "/web/shared/api.js";
import { t, money, number } from "/web/shared/i18n.js";
import { h, clear, field, action, table } from "/web/shared/ui.js";
import { download, isoDay, section } from "./kit.js";

const REPORT = "/v1/finance/boxoffice/report";
const PAGE = 50;

function groupBy(form) {
  const parts = ["title", "territory"].filter((d) => form.elements[d].checked);
  if (form.elements.period.value) parts.push(form.elements.period.value);
  return parts.join(",") || "day";
}

function amounts(local, key) {
  return local.length ? local.map((l) => h("div", {}, money(l[key], l.currency))) : "—";
}

function converted(row, currency) {
  const value = row.converted?.[currency]?.net_minor;
  return value === null || value === undefined ? h("span", { class: "muted", title: t("reports.no_rate") }, "—") : money(value, currency);
}

function reportTable(report) {
  // Converted amounts in the first reporting currency (settings: boxoffice reporting currencies).
  const currency = report.reporting_currencies[0] || "";
  const cells = (row) => [
    row.label,
    number(row.tickets_sold),
    number(row.qualified_views),
    amounts(row.local, "gross_minor"),
    amounts(row.local, "refunds_minor"),
    amounts(row.local, "net_sales_minor"),
    currency ? converted(row, currency) : null,
  ];
  const wrap = table(
    [
      t("reports.group"),
      t("reports.tickets"),
      t("reports.views"),
      t("reports.gross"),
      t("reports.refunds"),
      t("reports.net"),
      currency ? t("reports.net_in", { currency }) : null,
    ].filter((x) => x !== null),
    [...report.rows.map(cells), cells({ ...report.totals, label: t("reports.total") })].map((r) => r.filter((c) => c !== null)),
  );
  wrap.querySelector("tbody tr:last-child").classList.add("total");
  for (const row of wrap.querySelectorAll("tr")) {
    for (const cell of [...row.children].slice(1)) cell.classList.add("num");
  }
  return wrap;
}

export async function reportsView() {
  const results = h("div", { id: "report-results" });
  const form = h(
    "form",
    { id: "report-form" },
    h(
      "div",
      { class: "row" },
      field(t("reports.from"), h("input", { type: "date", name: "date_from", required: true, value: isoDay(-6) })),
      field(t("reports.to"), h("input", { type: "date", name: "date_to", required: true, value: isoDay(0) })),
      field(
        t("reports.period"),
        h(
          "select",
          { name: "period" },
          ["day", "week", "month", ""].map((p) => h("option", { value: p }, t("reports.period_" + (p || "none")))),
        ),
      ),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, t("reports.group_by")),
      ["title", "territory"].map((d) =>
        h("label", {}, h("input", { type: "checkbox", name: d, checked: d === "title" }), " ", t("reports.by_" + d)),
      ),
    ),
    h("button", { type: "submit" }, t("reports.show")),
  );

  const show = async (offset) => {
    clear(results, h("p", { class: "muted" }, t("status.loading")));
    const params = new URLSearchParams({
      date_from: form.elements.date_from.value,
      date_to: form.elements.date_to.value,
      group_by: groupBy(form),
    });
    const query = (extra) => `${REPORT}?${new URLSearchParams({ ...Object.fromEntries(params), ...extra })}`;
    const report = await api(query({ offset: String(offset), limit: String(PAGE) }));
    const name = `boxoffice-${params.get("date_from")}-${params.get("date_to")}`;
    const downloads = h(
      "div",
      { class: "actions", role: "group", "aria-label": t("reports.download") },
      ["csv", "xlsx", "json"].map((format) =>
        h(
          "button",
          { type: "button", class: "secondary", onclick: action(() => download(query({ format }), `${name}.${format}`)) },
          t("reports.download_" + format),
        ),
      ),
    );
    const pager = h("div", { class: "actions" });
    if (offset > 0) pager.append(h("button", { type: "button", class: "secondary", onclick: action(() => show(Math.max(0, offset - PAGE))) }, t("reports.previous")));
    if (offset + PAGE < report.total_groups) pager.append(h("button", { type: "button", class: "secondary", onclick: action(() => show(offset + PAGE)) }, t("reports.next")));
    const missing = report.missing_rates.length
      ? h("p", { class: "warn" }, t("reports.missing_rates", { count: report.missing_rates.length }))
      : null;
    clear(
      results,
      h("p", { class: "muted" }, t("reports.groups", { count: report.total_groups })),
      missing,
      report.rows.length ? reportTable(report) : h("p", {}, t("reports.empty")),
      pager,
      downloads,
    );
  };
  form.addEventListener("submit", action(() => show(0)));
  return section(t("reports.title"), form, results);
}
