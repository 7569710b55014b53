// Pocket Cinema's minimal player: sign in, list my tickets, play one with hls.js.
// Playback follows docs/playback.md; the session, grant, heartbeat, refresh and stop rules
// live in /web/shared/playback.js, which the storefront (/store) uses too.
import { Playback } from "/web/shared/playback.js";

let playback = null;
const pageErrors = [];
// Lets tests and curious people look inside: the sign-in, the player and every error.
const state = {
  access: null,
  device: null,
  get session() { return playback ? playback.session : null; },
  get hls() { return playback ? playback.hls : null; },
  get errors() { return pageErrors.concat(playback ? playback.errors : []); },
};
window.pocketCinema = state;

const $ = (id) => document.getElementById(id);

function deviceId() {
  let id = localStorage.getItem("pc-device");
  if (!id) {
    id = "web-" + Math.random().toString(36).slice(2, 12);
    localStorage.setItem("pc-device", id);
  }
  return id;
}

function showError(message) {
  pageErrors.push(message);
  $("error").textContent = message;
}

async function api(path, options = {}, token = state.access) {
  const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (e) { /* not JSON */ }
    const error = new Error(problem.detail || response.statusText);
    error.code = problem.code || String(response.status);
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

async function login(email, password) {
  state.device = deviceId();
  const tokens = await api("/v1/auth/login", {
    method: "POST", body: JSON.stringify({ email, password, device_id: state.device }),
  }, null);
  state.access = tokens.access_token;
  await showLibrary();
}

async function showLibrary() {
  const page = await api("/v1/me/tickets?state=active");
  const list = $("tickets");
  list.innerHTML = "";
  for (const ticket of page.items) {
    const button = document.createElement("button");
    button.textContent = `${ticket.title_id} — ${ticket.state}` +
      (ticket.remaining_seconds != null ? ` (${Math.round(ticket.remaining_seconds / 3600)} h left)` : "");
    button.dataset.ticket = ticket.id;
    button.addEventListener("click", () => play(ticket.id).catch((e) => showError(`${e.code}: ${e.message}`)));
    list.appendChild(button);
  }
  $("library").hidden = false;
}

async function play(ticketId) {
  await stop();
  const started = await api("/v1/playback/sessions", {
    method: "POST", body: JSON.stringify({ ticket_id: ticketId }),
  });
  $("player").hidden = false;
  playback = new Playback({
    video: $("video"),
    device: state.device,
    onError: (e) => showError(`${e.code}: ${e.message}`),
    onLevel: (height) => { $("status").textContent = `quality: ${height}p`; },
  });
  const hls = await playback.attach(started);
  hls.on(Hls.Events.MANIFEST_PARSED, () => fillQuality(hls));
  hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => fillAudio(hls));
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => fillSubtitles(hls));
}

async function stop() {
  if (playback) await playback.stop();
}

function option(select, value, label, selected) {
  const item = document.createElement("option");
  item.value = value;
  item.textContent = label;
  item.selected = selected;
  select.appendChild(item);
}

function fillQuality(hls) {
  const select = $("quality");
  select.innerHTML = "";
  option(select, "-1", "Auto", true);
  hls.levels.forEach((level, i) => option(select, String(i), `${level.height}p`, false));
  select.onchange = () => { hls.currentLevel = Number(select.value); };
}

function fillAudio(hls) {
  const select = $("audio");
  select.innerHTML = "";
  hls.audioTracks.forEach((track, i) =>
    option(select, String(i), `${track.name} (${track.lang || "?"})`, i === hls.audioTrack));
  select.onchange = () => { hls.audioTrack = Number(select.value); };
}

function fillSubtitles(hls) {
  const select = $("subtitles");
  select.innerHTML = "";
  option(select, "-1", "Off", hls.subtitleTrack === -1);
  hls.subtitleTracks.forEach((track, i) =>
    option(select, String(i), `${track.name} (${track.lang || "?"})`, i === hls.subtitleTrack));
  select.onchange = () => { hls.subtitleTrack = Number(select.value); };
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  login($("email").value, $("password").value).catch((e) => showError(`${e.code}: ${e.message}`));
});
$("stop").addEventListener("click", () => stop());
window.addEventListener("pagehide", () => { stop(); });
