// Finance's checks: reconciliation of the ledger against the payment provider per day, the
// FX rates reports convert with, and the payment review queue (accept or refund).
import { api } from "/web/shared/api.js";
import { t, money, number } from "/web/shared/i18n.js";
import { h, clear, field, action, showStatus } from "/web/shared/ui.js";
import { ask, badge, cards, code, facts, isoDay, section, when } from "./kit.js";

// A form of one day and a result below it, shown for that day at once.
function dayForm(id, defaultDay, extra, show) {
  const results = h("div", { id: `${id}-results` });
  const form = h(
    "form",
    { id: `${id}-form` },
    h(
      "div",
      { class: "row" },
      field(t("finance.day"), h("input", { type: "date", name: "day", required: true, value: defaultDay })),
      extra,
      h("button", { type: "submit" }, t("finance.show")),
    ),
  );
  const run = () => {
    // The old day's answer goes first, so nobody reads it as the new day's.
    clear(results, h("p", { class: "muted" }, t("status.loading")));
    return show(form, results);
  };
  form.addEventListener("submit", action(run));
  return { form, results, run };
}

function movement(m) {
  return m ? `${money(m.amount_minor, m.currency)} · ${m.kind}` : "—";
}

export async function reconciliationView() {
  const provider = h(
    "select",
    { name: "provider" },
    h("option", { value: "" }, t("finance.provider_default")),
    h("option", { value: "stripe" }, "Stripe"),
    h("option", { value: "sandbox" }, t("finance.provider_sandbox")),
  );
  const { form, results, run } = dayForm("reconciliation", isoDay(-1), field(t("finance.provider"), provider), async (f, out) => {
    const query = f.elements.provider.value ? `?provider=${f.elements.provider.value}` : "";
    const r = await api(`/v1/finance/reconciliation/${f.elements.day.value}${query}`);
    const ok = r.differences.length === 0;
    clear(
      out,
      facts([
        [t("finance.provider"), r.provider],
        [t("finance.ledger_entries"), number(r.ledger_entries)],
        [t("finance.provider_transactions"), number(r.provider_transactions)],
        [t("finance.matched"), number(r.matched)],
        [t("finance.result"), ok ? badge(t("finance.balanced"), "good") : badge(t("finance.differences", { count: r.differences.length }), "bad")],
      ]),
      ok
        ? null
        : cards(
            [t("finance.problem"), t("finance.reference"), t("finance.in_ledger"), t("finance.at_provider")],
            r.differences.map((d) => [code(d.problem), code(d.reference), movement(d.ledger), movement(d.provider)]),
          ),
    );
  });
  await run();
  return section(t("finance.reconciliation_title"), h("p", { class: "muted" }, t("finance.reconciliation_help")), form, results);
}

export async function fxView() {
  const { form, results, run } = dayForm("fx", isoDay(0), null, async (f, out) => {
    const rates = await api(`/v1/finance/fx-rates/${f.elements.day.value}`);
    const rows = Object.entries(rates).sort(([a], [b]) => a.localeCompare(b));
    clear(
      out,
      rows.length
        ? cards([t("finance.currency"), t("finance.per_eur")], rows.map(([c, v]) => [c, v]))
        : h("p", {}, t("finance.no_rates")),
    );
  });
  await run();
  return section(t("finance.fx_title"), h("p", { class: "muted" }, t("finance.fx_help")), form, results);
}

function decide(review, verb, reload) {
  return action(async () => {
    const reason = h("textarea", { required: true, minlength: 3, maxlength: 500 });
    const done = await ask({
      title: t(`reviews.${verb}_title`),
      fields: [{ name: "reason", label: t("refund.reason"), control: reason }],
      submitLabel: t(`reviews.${verb}`),
      run: (values) =>
        api(`/v1/finance/payment-reviews/${review.id}/${verb}`, { method: "POST", body: { reason: values.reason } }),
    });
    if (done) {
      showStatus(t(`reviews.${verb}_done`));
      await reload();
    }
  });
}

export async function reviewsView() {
  const status = h(
    "select",
    { name: "status" },
    ["open", "", "accepted", "refunding", "refunded"].map((s) => h("option", { value: s }, t("reviews.status_" + (s || "all")))),
  );
  const results = h("div", { id: "reviews-results" });
  const reload = async () => {
    const query = status.value ? `?status=${status.value}` : "";
    const page = await api(`/v1/finance/payment-reviews${query}`);
    clear(
      results,
      page.items.length
        ? cards(
            [t("reviews.ticket"), t("reviews.expected"), t("reviews.received"), t("reviews.paid_at"), t("reviews.status"), ""],
            page.items.map((r) => [
              h("a", { href: `#/tickets/${r.ticket_id}` }, r.ticket_id.slice(0, 10) + "…"),
              money(r.expected_minor, r.expected_currency),
              money(r.received_minor, r.received_currency),
              when(r.paid_at),
              t("reviews.status_" + r.status),
              r.status === "open"
                ? h(
                    "div",
                    { class: "actions" },
                    h("button", { type: "button", onclick: decide(r, "accept", reload) }, t("reviews.accept")),
                    h("button", { type: "button", class: "secondary", onclick: decide(r, "refund", reload) }, t("reviews.refund")),
                  )
                : r.reason || "",
            ]),
          )
        : h("p", {}, t("reviews.empty")),
    );
  };
  status.addEventListener("change", action(reload));
  await reload();
  return section(t("reviews.title"), h("p", { class: "muted" }, t("reviews.help")), h("div", { class: "row" }, field(t("reviews.status"), status)), results);
}
