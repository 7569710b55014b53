// Pocket Cinema's minimal player: sign in, list my tickets, play one with hls.js.
// Playback follows docs/playback.md: start a session, send the current playback grant and
// this device's id with every playlist, key and media request, heartbeat (each answer is
// the next grant), refresh the grant after a seek, stop.
"use strict";

const state = { access: null, device: null, session: null, token: null, expires: 0, hls: null,
  seq: 0, lastTime: 0, watched: 0, timers: [], errors: [] };
window.pocketCinema = state; // lets tests and curious people look inside

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
  state.errors.push(message);
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

function isOurs(url) {
  return new URL(url, location.href).pathname.startsWith("/v1/playback/sessions/");
}

async function play(ticketId) {
  await stop();
  const started = await api("/v1/playback/sessions", {
    method: "POST", body: JSON.stringify({ ticket_id: ticketId }),
  });
  state.session = started;
  state.token = started.token;
  state.seq = 0;
  state.watched = 0;
  $("player").hidden = false;
  const video = $("video");
  const hls = new Hls({
    // Playlists, keys and media trust the grant alone; hls.js asks here for every request,
    // so the grant a heartbeat just brought is the one sent.
    xhrSetup: (xhr, url) => {
      if (isOurs(url)) {
        xhr.setRequestHeader("Authorization", "Bearer " + state.token);
        xhr.setRequestHeader("X-Device-Id", state.device);
      }
    },
  });
  state.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    fillQuality(hls);
    video.play().catch(() => { /* autoplay may need a click */ });
  });
  hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => fillAudio(hls));
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => fillSubtitles(hls));
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
    $("status").textContent = `quality: ${hls.levels[data.level].height}p`;
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (data.fatal) showError(`playback error: ${data.type} ${data.details}`);
    else {
      const code = data.response ? ` ${data.response.code}` : "";
      const url = data.context && data.context.url ? ` ${data.context.url.split("?")[0]}` : (data.frag && data.frag.decryptdata ? ` ${String(data.frag.decryptdata.uri).split("?")[0]}` : "");
      state.errors.push(`${data.type} ${data.details}${code}${url}${data.error ? " " + data.error.message : ""}`);
    }
  });
  hls.loadSource(started.master_playlist_url);
  hls.attachMedia(video);

  // A grant lives about a minute and every heartbeat brings the next one; a refresh only
  // when a heartbeat was late and the grant is about to run out. A seek refreshes at once
  // (the grant opens the key periods around the playhead).
  state.expires = new Date(started.token_expires_at).getTime();
  state.timers.push(setInterval(() => { if (state.expires - Date.now() < 15000) refresh(); }, 5000));
  state.timers.push(setInterval(heartbeat, started.heartbeat_interval_seconds * 1000));
  state.lastTime = 0;
  video.addEventListener("timeupdate", countWatched);
  video.addEventListener("seeking", refresh);
}

function countWatched() {
  const now = $("video").currentTime;
  const step = now - state.lastTime;
  if (step > 0 && step < 2) state.watched += step; // seeks are not watching
  state.lastTime = now;
}

async function refresh() {
  if (!state.session) return;
  const fresh = await api(`/v1/playback/sessions/${state.session.session_id}/token`, {
    method: "POST", headers: { "X-Device-Id": state.device },
    body: JSON.stringify({ position_seconds: $("video").currentTime }),
  }, state.token).catch((e) => showError(`${e.code}: ${e.message}`));
  if (fresh) { state.token = fresh.token; state.expires = new Date(fresh.token_expires_at).getTime(); }
}

async function heartbeat() {
  if (!state.session) return;
  const watched = state.watched;
  state.watched = 0;
  state.seq += 1;
  const beat = await api(`/v1/playback/sessions/${state.session.session_id}/heartbeat`, {
    method: "POST", headers: { "X-Device-Id": state.device },
    body: JSON.stringify({ seq: state.seq, position_seconds: $("video").currentTime, watched_seconds: watched }),
  }, state.token).catch((e) => showError(`${e.code}: ${e.message}`));
  if (beat) { state.token = beat.token; state.expires = new Date(beat.token_expires_at).getTime(); }
}

async function stop() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  if (state.hls) { state.hls.destroy(); state.hls = null; }
  if (state.session) {
    const id = state.session.session_id;
    state.session = null;
    await api(`/v1/playback/sessions/${id}/stop`, { method: "POST" }, state.token).catch(() => {});
  }
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
