// Webhook settings (where release.ready and release.failed are sent, and the signing secret)
// and the delivery log (GET /v1/studio/webhook/deliveries).
import { api } from "/web/shared/api.js";
import { date, t } from "/web/shared/i18n.js";
import { action, field, h, showStatus, table } from "/web/shared/ui.js";

const URL_PATTERN = /^https?:\/\/\S+$/;

export async function webhookView() {
  const [settings, deliveries] = await Promise.all([api("/v1/studio/webhook"), api("/v1/studio/webhook/deliveries?limit=100")]);
  const url = h("input", { type: "url", value: settings.url || "", maxlength: 2000, placeholder: "https://example.com/hooks/pocketcinema" });
  const secret = h("input", { readonly: true, value: settings.secret, class: "mono" });
  const when = (iso) => (iso ? date(iso, { dateStyle: "short", timeStyle: "medium" }) : "—");
  return h("div", {},
    h("form", {
      class: "card",
      onsubmit: action(async () => {
        const value = url.value.trim();
        if (value && !URL_PATTERN.test(value)) {
          url.setAttribute("aria-invalid", "true");
          throw new Error(t("webhook.url_invalid"));
        }
        await api("/v1/studio/webhook", { method: "PUT", body: { url: value || null } });
        showStatus(t("status.saved"));
      }),
    },
    h("h2", {}, t("nav.webhook")),
    h("p", { class: "muted" }, t("webhook.hint")),
    field(t("webhook.url"), url),
    field(t("webhook.secret", { header: settings.signature_header }), secret),
    h("button", { type: "submit" }, t("action.save"))),
    h("section", { "aria-labelledby": "deliveries-h" },
      h("h3", { id: "deliveries-h" }, t("webhook.deliveries")),
      deliveries.length
        ? table([t("webhook.event"), t("webhook.release"), t("webhook.state"), t("webhook.attempts"), t("webhook.created"), t("webhook.finished"), t("webhook.error")],
            deliveries.map((d) => [d.event, h("a", { href: `#/releases/${d.release_id}` }, d.release_id.slice(0, 8)),
              h("span", { class: d.state === "failed" ? "error" : d.state === "done" ? "ok" : "warn" }, t(`webhook.state.${d.state}`)),
              String(d.attempts), when(d.created_at), when(d.finished_at || d.next_attempt_at), d.last_error || ""]))
        : h("p", { class: "muted" }, t("webhook.none"))),
  );
}
