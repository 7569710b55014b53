// A title page: the localized text, the facts, the free trailer, and buy or watch.
import { signedIn } from "/web/shared/api.js";
import { number, t } from "/web/shared/i18n.js";
import { h } from "/web/shared/ui.js";
import { artwork, clock, getTitle, myTickets, price, watchable } from "./common.js";

function trailer(title) {
  // A stored trailer is served by the API where the title is sold; a public trailer_url
  // (the media CDN) is played as it is.
  const src = title.trailer_key ? `/v1/titles/${title.id}/trailer` : title.trailer_url;
  if (!src) return null;
  return h(
    "section",
    { "aria-labelledby": "trailer-heading" },
    h("h3", { id: "trailer-heading" }, t("store.trailer")),
    h("video", { id: "trailer", src, controls: true, preload: "metadata", playsinline: true, "aria-label": t("store.trailer") }),
  );
}

function languages(list) {
  const names = new Intl.DisplayNames([document.documentElement.lang || "en"], { type: "language" });
  return [...new Set(list)].map((tag) => {
    try {
      return names.of(tag);
    } catch {
      return tag;
    }
  }).join(", ");
}

export async function titleView({ id }) {
  const [title, tickets] = await Promise.all([getTitle(id), myTickets().catch(() => [])]);
  document.title = `${title.name} — ${t("app.name")}`;
  const ticket = watchable(tickets, title.id);
  const facts = [
    title.runtime_seconds ? t("store.minutes", { count: number(Math.round(title.runtime_seconds / 60)) }) : null,
    title.genres.length ? title.genres.join(", ") : null,
    title.audio_languages.length ? t("store.audio", { list: languages(title.audio_languages) }) : null,
    title.subtitle_languages.length ? t("store.subtitles", { list: languages(title.subtitle_languages) }) : null,
  ].filter(Boolean);
  let act;
  if (ticket) {
    const resume = ticket.resume_position_seconds;
    act = h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: `#/watch/${ticket.id}`, id: "watch" },
        resume > 0 ? t("store.resume_at", { time: clock(resume) }) : t("store.watch")),
      ticket.remaining_seconds != null
        ? h("span", { class: "muted" }, t("store.hours_left", { count: number(Math.ceil(ticket.remaining_seconds / 3600)) }))
        : null,
    );
  } else if (!title.playable) {
    act = h("p", { class: "muted" }, t("store.coming_soon"));
  } else {
    act = h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: `#/buy/${title.id}`, id: "buy" }, t("store.buy", { price: price(title) })),
      signedIn() ? null : h("span", { class: "muted" }, t("store.sign_in_to_buy")),
    );
  }
  return h(
    "article",
    { class: "title-page card", lang: title.locale },
    artwork(title),
    h(
      "div",
      {},
      h("h2", { id: "title-name" }, title.name),
      title.tagline ? h("p", { class: "tagline" }, title.tagline) : null,
      title.original_title !== title.name ? h("p", { class: "muted" }, title.original_title) : null,
      h("p", { class: "facts" }, facts.map((x) => h("span", {}, x))),
      title.synopsis ? h("p", { class: "synopsis" }, title.synopsis) : null,
      act,
      trailer(title),
    ),
  );
}
