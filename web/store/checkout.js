// Buying a ticket. The checkout is one purchase attempt with one Idempotency-Key, so a double
// click or a retried request pays once. After a declined card the viewer tries another card
// on the same payment (the repeat of the purchase answers it again), as Stripe's
// PaymentSheet does: one ticket, never a second charge.
// The embedded default pays with the sandbox's documented test cards; production mounts
// Stripe's Payment Element (Stripe.js loaded from js.stripe.com, only then).
import { api, signedIn } from "/web/shared/api.js";
import { locale, t } from "/web/shared/i18n.js";
import { action, field, h, showError, showStatus } from "/web/shared/ui.js";
import { getTitle, price, problem, signInFirst } from "./common.js";

const STRIPE_JS = "https://js.stripe.com/v3/";
// The sandbox's test cards (docs/payments.md).
const TEST_CARDS = [
  ["pm_card_visa", "store.card_visa"],
  ["4000000000000002", "store.card_declined"],
];

// Where "back to the app" leads after a purchase: set by the server only for a configured
// app URL scheme (the link-out from a mobile app), never an arbitrary address.
function appReturnLink() {
  return document.documentElement.dataset.return || null;
}

function loadStripe() {
  if (globalThis.Stripe) return Promise.resolve(globalThis.Stripe);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = STRIPE_JS;
    script.onload = () => resolve(globalThis.Stripe);
    script.onerror = () => reject(new Error("Stripe.js did not load"));
    document.head.append(script);
  });
}

async function waitUntilPaid(ticketId) {
  // Stripe's webhook turns the ticket active; the page follows it for up to a minute.
  for (let i = 0; i < 60; i += 1) {
    const ticket = await api(`/v1/me/tickets/${ticketId}`);
    if (ticket.state !== "pending") return ticket;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return api(`/v1/me/tickets/${ticketId}`);
}

function paidView(title, ticket) {
  const back = appReturnLink();
  return h(
    "section",
    { class: "checkout card paid", id: "paid" },
    h("h2", {}, t("store.paid_heading")),
    h("p", {}, t("store.paid", { title: title.name })),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: `#/watch/${ticket.id}`, id: "watch-now" }, t("store.watch")),
      back ? h("a", { class: "button", href: back, id: "back-to-app" }, t("store.back_to_app")) : null,
    ),
  );
}

export async function checkoutView({ id }) {
  if (!signedIn()) return signInFirst(`#/buy/${id}`);
  const title = await getTitle(id);
  const outlet = h("div");
  const key = crypto.randomUUID();
  let attempt = null; // the purchase in flight: a second click joins it instead of buying again

  const purchase = () =>
    api("/v1/purchases", {
      method: "POST",
      headers: { "Idempotency-Key": key },
      body: {
        title_id: title.id,
        expected_amount_minor: title.price.amount_minor,
        expected_currency: title.price.currency,
      },
    });

  const finish = (ticket) => {
    if (ticket.state === "active") {
      outlet.replaceChildren(paidView(title, ticket));
      showStatus(t("store.paid_heading"));
      return;
    }
    showError(problem(t("store.not_paid"), ticket.failure_code || ticket.state));
  };

  const card = h("select", { name: "card" }, TEST_CARDS.map(([value, label]) => h("option", { value }, t(label))));
  const pay = h("button", { type: "submit", id: "pay" }, t("store.pay", { price: price(title) }));
  const stripeMount = h("div", { id: "payment-element" });
  const form = h(
    "form",
    {
      class: "checkout card",
      onsubmit: action(async () => {
        attempt ??= (async () => {
          pay.disabled = true;
          try {
            const sheet = await purchase();
            if (sheet.provider === "sandbox") {
              const paid = await api(`/v1/sandbox/payments/${encodeURIComponent(sheet.payment_intent_id)}/confirm`, {
                method: "POST",
                body: { payment_method: card.value },
              });
              finish(paid.ticket);
            } else {
              await stripeCheckout(sheet, stripeMount, pay, finish);
            }
          } finally {
            attempt = null;
            pay.disabled = false;
          }
        })();
        return attempt;
      }),
    },
    h("h2", {}, t("store.checkout")),
    h("p", {}, h("strong", {}, title.name), " — ", price(title)),
    h("p", { class: "muted", id: "sandbox-note" }, t("store.sandbox_note")),
    field(t("store.test_card"), card),
    stripeMount,
    h("div", { class: "actions" }, pay, h("a", { href: `#/title/${title.id}` }, t("action.cancel"))),
  );
  outlet.append(form);
  return outlet;
}

// Production: the Payment Element collects the card (3-D Secure included) in Stripe's frame;
// the webhook, not this page, turns the ticket active.
async function stripeCheckout(sheet, mount, pay, finish) {
  const form = mount.closest("form");
  form.querySelector("#sandbox-note")?.remove();
  form.querySelector("select[name=card]")?.closest(".field")?.remove();
  const Stripe = await loadStripe();
  const stripe = Stripe(sheet.publishable_key, { locale: locale.startsWith("zh") ? "zh" : locale });
  const elements = stripe.elements({ clientSecret: sheet.client_secret });
  elements.create("payment").mount(mount);
  await new Promise((resolve) => {
    pay.disabled = false;
    form.onsubmit = action(async () => {
      pay.disabled = true;
      const { error } = await stripe.confirmPayment({
        elements,
        redirect: "if_required",
        confirmParams: { return_url: location.href },
      });
      pay.disabled = false;
      if (error) throw problem(error.message, error.decline_code || error.code || error.type);
      finish(await waitUntilPaid(sheet.ticket.id));
      resolve();
    });
  });
}
