// Support's look-ups: accounts, studios and tickets; an account (disable or enable it, with
// the reason on record); a ticket (its payment, a full or partial refund, the audit trail).
import { api } from "/web/shared/api.js";
import { t, money } from "/web/shared/i18n.js";
import { h, clear, field, action, showStatus } from "/web/shared/ui.js";
import { ask, badge, cards, code, facts, named, section, toMajor, toMinor, when } from "./kit.js";

const KINDS = {
  accounts: {
    path: (q) => `/v1/admin/users?q=${encodeURIComponent(q)}`,
    headers: () => [t("people.email"), t("people.role"), t("people.state"), t("people.created")],
    row: (u) => [h("a", { href: `#/users/${u.id}` }, u.email), t("role." + u.role), accountState(u), when(u.created_at)],
  },
  studios: {
    path: (q) => `/v1/admin/studios?q=${encodeURIComponent(q)}`,
    headers: () => [t("people.studio"), t("people.id"), t("people.created")],
    row: (s) => [s.name, code(s.id), when(s.created_at)],
  },
  tickets: {
    path: (q) => `/v1/finance/tickets?q=${encodeURIComponent(q)}`,
    headers: ticketHeaders,
    row: ticketRow,
  },
};

// The last search, so coming back from an account or a ticket shows it again.
let last = { kind: "accounts", q: "" };

function accountState(u) {
  if (u.deleted_at) return badge(t("people.deleted"), "bad");
  return u.disabled_at ? badge(t("people.disabled"), "bad") : badge(t("people.active"), "good");
}

function ticketHeaders() {
  return [t("tickets.ticket"), t("tickets.viewer"), t("tickets.price"), t("tickets.state"), t("tickets.paid_at")];
}

function ticketRow(x) {
  return [
    h("a", { href: `#/tickets/${x.id}` }, x.id.slice(0, 12) + "…"),
    h("a", { href: `#/users/${x.viewer_id}` }, x.viewer_id.slice(0, 12) + "…"),
    money(x.price_minor, x.currency),
    named("ticket_state", x.state),
    when(x.paid_at),
  ];
}

export async function lookupView() {
  const kind = h(
    "select",
    { name: "kind" },
    Object.keys(KINDS).map((k) => h("option", { value: k, selected: k === last.kind }, t("lookup.kind_" + k))),
  );
  const q = h("input", { type: "search", name: "q", value: last.q, maxlength: 320 });
  const results = h("div", { id: "lookup-results" });
  const run = async () => {
    last = { kind: kind.value, q: q.value.trim() };
    const spec = KINDS[last.kind];
    if (last.kind === "tickets" && !last.q) {
      clear(results, h("p", {}, t("lookup.ticket_needs_query")));
      return;
    }
    const page = await api(spec.path(last.q));
    clear(
      results,
      h("p", { class: "muted" }, t("lookup.found", { count: page.total })),
      page.items.length ? cards(spec.headers(), page.items.map(spec.row)) : null,
    );
  };
  const form = h(
    "form",
    { id: "lookup-form" },
    h(
      "div",
      { class: "row" },
      field(t("lookup.kind"), kind),
      field(t("lookup.query"), q),
      h("button", { type: "submit" }, t("lookup.search")),
    ),
    h("p", { class: "muted" }, t("lookup.help")),
  );
  form.addEventListener("submit", action(run));
  if (last.q || last.kind !== "tickets") await run();
  return section(t("lookup.title"), form, results);
}

export async function userView({ id }, me) {
  const out = h("div", {});
  const render = async () => {
    const [account, tickets] = await Promise.all([
      api(`/v1/admin/users/${encodeURIComponent(id)}`),
      api(`/v1/finance/tickets?viewer_id=${encodeURIComponent(id)}`),
    ]);
    const decide = (verb) =>
      action(async () => {
        const done = await ask({
          title: t(`account.${verb}_title`, { email: account.email }),
          fields: [{ name: "reason", label: t("refund.reason"), control: h("textarea", { required: true, minlength: 3, maxlength: 500 }) }],
          submitLabel: t(`account.${verb}`),
          run: (values) => api(`/v1/admin/users/${account.id}/${verb}`, { method: "POST", body: { reason: values.reason } }),
        });
        if (done) {
          showStatus(t(`account.${verb}_done`));
          await render();
        }
      });
    // Only admins may decide about an account (the API refuses finance too).
    const canDecide = me.role === "admin" && !account.deleted_at && account.id !== me.user_id;
    const verb = account.disabled_at ? "enable" : "disable";
    clear(
      out,
      section(
        account.email,
        facts([
          [t("people.id"), code(account.id)],
          [t("people.role"), t("role." + account.role)],
          [t("people.studio"), account.studio_id ? code(account.studio_id) : "—"],
          [t("people.created"), when(account.created_at)],
          [t("people.verified"), when(account.email_verified_at)],
          [t("people.state"), accountState(account)],
        ]),
        canDecide
          ? h("div", { class: "actions" }, h("button", { type: "button", id: "account-decide", onclick: decide(verb) }, t(`account.${verb}`)))
          : null,
        h("h3", {}, t("account.history")),
        account.actions.length
          ? cards(
              [t("account.decision"), t("account.by"), t("refund.reason"), t("account.when")],
              account.actions.map((a) => [t("account.kind_" + a.kind), code(a.actor_id), a.reason, when(a.created_at)]),
            )
          : h("p", { class: "muted" }, t("account.no_history")),
      ),
      section(
        t("tickets.title"),
        tickets.items.length ? cards(ticketHeaders(), tickets.items.map(ticketRow)) : h("p", {}, t("tickets.none")),
      ),
    );
  };
  await render();
  return out;
}

function refundDialog(ticket) {
  const currency = ticket.paid_currency;
  const amount = h("input", { type: "text", inputmode: "decimal", required: true, value: toMajor(ticket.refundable_minor, currency) });
  const reason = h("textarea", { required: true, minlength: 3, maxlength: 500 });
  // One key per dialog: pressing "Refund" again after a lost answer repeats the same request,
  // and the API answers it with the first refund instead of making a second one.
  const key = crypto.randomUUID();
  return ask({
    title: t("refund.title"),
    fields: [
      { name: "amount", label: t("refund.amount", { currency, max: money(ticket.refundable_minor, currency) }), control: amount },
      { name: "reason", label: t("refund.reason"), control: reason },
    ],
    submitLabel: t("refund.submit"),
    run: (values) => {
      const minor = toMinor(values.amount, currency);
      if (minor === null) throw new Error(t("refund.amount_invalid"));
      const body = { reason: values.reason };
      // The whole refundable amount is sent as a full refund (the API takes what is left).
      if (minor !== ticket.refundable_minor) body.amount_minor = minor;
      return api(`/v1/finance/tickets/${ticket.id}/refunds`, {
        method: "POST",
        body,
        headers: { "Idempotency-Key": key },
      });
    },
  });
}

export async function ticketView({ id }) {
  const out = h("div", {});
  const render = async () => {
    const ticket = (await api(`/v1/finance/tickets?q=${encodeURIComponent(id)}`)).items[0];
    if (!ticket) {
      clear(out, section(t("tickets.ticket_title"), h("p", {}, t("tickets.not_found"))));
      return;
    }
    const trail = await api(`/v1/finance/tickets/${encodeURIComponent(ticket.id)}/payment-actions`);
    const canRefund = ticket.refundable_minor > 0 && ticket.paid_currency;
    const refund = action(async () => {
      if (await refundDialog(ticket)) {
        showStatus(t("refund.requested"));
        await render();
      }
    });
    clear(
      out,
      section(
        t("tickets.ticket_title"),
        facts([
          [t("tickets.ticket"), code(ticket.id)],
          [t("tickets.viewer"), h("a", { href: `#/users/${ticket.viewer_id}` }, ticket.viewer_id)],
          [t("tickets.title_id"), code(ticket.title_id)],
          [t("tickets.territory"), ticket.territory],
          [t("tickets.price"), money(ticket.price_minor, ticket.currency)],
          [t("tickets.state"), named("ticket_state", ticket.state)],
          [t("tickets.provider"), ticket.provider],
          [t("tickets.payment"), code(ticket.payment_intent_id)],
          [t("tickets.paid_at"), when(ticket.paid_at)],
          [t("tickets.refundable"), ticket.paid_currency ? money(ticket.refundable_minor, ticket.paid_currency) : "—"],
        ]),
        canRefund ? h("div", { class: "actions" }, h("button", { type: "button", id: "refund", onclick: refund }, t("refund.open"))) : null,
      ),
      section(
        t("actions.title"),
        trail.items.length
          ? cards(
              [t("actions.kind"), t("actions.amount"), t("actions.status"), t("refund.reason"), t("account.by"), t("account.when")],
              trail.items.map((a) => [
                named("action_kind", a.kind),
                a.amount_minor === null ? "—" : money(a.amount_minor, a.currency),
                a.error_code ? [named("action_status", a.status), " ", code(a.error_code)] : named("action_status", a.status),
                a.reason,
                code(a.actor_id),
                when(a.created_at),
              ]),
            )
          : h("p", { class: "muted" }, t("actions.none")),
      ),
    );
  };
  await render();
  return out;
}
