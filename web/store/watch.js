// Watching a ticket with the player shared with /play (web/shared/playback.js): the film
// starts where my library says I left it, and leaving the page stops the session after a
// last heartbeat, so "continue watching" knows the position on every device.
import { api, deviceId } from "/web/shared/api.js";
import { t } from "/web/shared/i18n.js";
import { h, showError, showStatus } from "/web/shared/ui.js";
import { Playback } from "/web/shared/playback.js";
import { clock, getTitle, problem } from "./common.js";

let current = null;

// Called when the route changes or the page is left.
export function leave() {
  const playing = current;
  current = null;
  return playing ? playing.stop() : Promise.resolve();
}

export async function watchView({ ticket: ticketId }) {
  await leave();
  const ticket = await api(`/v1/me/tickets/${encodeURIComponent(ticketId)}`);
  const title = await getTitle(ticket.title_id).catch(() => null);
  const from = ticket.resume_position_seconds || 0;
  const started = await api("/v1/playback/sessions", {
    method: "POST",
    body: { ticket_id: ticket.id, position_seconds: from },
  });
  const video = h("video", { id: "video", controls: true, playsinline: true, "aria-label": title ? title.name : t("store.player") });
  const quality = h("span", { class: "muted", id: "quality" });
  const playback = new Playback({
    video,
    device: deviceId(),
    onError: (error) => showError(problem(error.message, error.code, error.status)),
    onLevel: (height) => {
      quality.textContent = t("store.quality", { height });
    },
  });
  current = playback;
  window.pocketCinemaStore = playback; // tests and curious people look inside
  await playback.attach(started, from);
  if (from > 0) showStatus(t("store.resumed", { time: clock(from) }));
  return h(
    "section",
    { class: "player", "aria-labelledby": "player-heading" },
    h("h2", { id: "player-heading" }, title ? title.name : t("store.player")),
    video,
    h(
      "div",
      { class: "actions" },
      h("a", { href: title ? `#/title/${title.id}` : "#/", id: "leave" }, t("store.leave")),
      quality,
    ),
  );
}
