// Playing one ticket with hls.js, as docs/playback.md describes: a session started by the
// app (with its sign-in), then the playback grant alone for playlists, keys and media; a
// heartbeat (each answer is the next grant) that reports the playhead and the seconds
// really watched; a refresh when a heartbeat was late or after a seek; a last heartbeat
// and a stop when the viewer leaves. Both /play (api/player/player.js) and the storefront
// (/store) use this module, so the rules live in one place.

// hls.js as installed from npm by ./run player-setup and served by the API (no CDN).
const HLS_SCRIPT = "/play/hls.min.js";

let loading = null;

export function loadHls() {
  if (globalThis.Hls) return Promise.resolve(globalThis.Hls);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_SCRIPT;
      script.onload = () => resolve(globalThis.Hls);
      script.onerror = () => {
        loading = null;
        reject(Object.assign(new Error("hls.js is not installed"), { code: "player_assets_missing" }));
      };
      document.head.append(script);
    });
  }
  return loading;
}

function isOurs(url) {
  return new URL(url, location.href).pathname.startsWith("/v1/playback/sessions/");
}

// A refusal from a grant-authenticated call, with the problem's stable code.
async function grantCall(path, grant, device, body) {
  const headers = { Authorization: "Bearer " + grant, "X-Device-Id": device };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive: true, // the last heartbeat and the stop still go out when the page is left
  });
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // not JSON
    }
    throw Object.assign(new Error(problem.detail || response.statusText), {
      code: problem.code || String(response.status),
      status: response.status,
    });
  }
  return response.status === 204 ? null : response.json();
}

export class Playback {
  // video: the <video>; device: this browser's device id; onError(error): a refusal or a
  // fatal player error (error.code is the problem's code); onLevel(height): quality switches.
  constructor({ video, device, onError = () => {}, onLevel = () => {} }) {
    this.video = video;
    this.device = device;
    this.onError = onError;
    this.onLevel = onLevel;
    this.session = null;
    this.token = null;
    this.expires = 0;
    this.hls = null;
    this.seq = 0;
    this.lastTime = 0;
    this.watched = 0;
    this.timers = [];
    this.errors = []; // every player error, fatal or not (tests and curious people look)
    this.countWatched = this.countWatched.bind(this);
    this.refresh = this.refresh.bind(this);
  }

  // started: the answer of POST /v1/playback/sessions (the app starts the session with its
  // own sign-in); the film starts at started.position_seconds or at `from`.
  async attach(started, from = 0) {
    const Hls = await loadHls();
    this.session = started;
    this.token = started.token;
    this.seq = 0;
    this.watched = 0;
    const video = this.video;
    const hls = new Hls({
      startPosition: from > 0 ? from : -1,
      // Playlists, keys and media trust the grant alone; hls.js asks here for every request,
      // so the grant a heartbeat just brought is the one sent.
      xhrSetup: (xhr, url) => {
        if (isOurs(url)) {
          xhr.setRequestHeader("Authorization", "Bearer " + this.token);
          xhr.setRequestHeader("X-Device-Id", this.device);
        }
      },
    });
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      video.play().catch(() => {
        // autoplay may need a click: the controls are there
      });
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => this.onLevel(hls.levels[data.level].height));
    hls.on(Hls.Events.ERROR, (_, data) => {
      const code = data.response ? ` ${data.response.code}` : "";
      const url = data.context?.url
        ? ` ${data.context.url.split("?")[0]}`
        : data.frag?.decryptdata
          ? ` ${String(data.frag.decryptdata.uri).split("?")[0]}`
          : "";
      const text = `${data.type} ${data.details}${code}${url}${data.error ? " " + data.error.message : ""}`;
      this.errors.push(text);
      if (data.fatal) this.onError(Object.assign(new Error(text), { code: "playback_error" }));
    });
    hls.loadSource(started.master_playlist_url);
    hls.attachMedia(video);

    // A grant lives about a minute and every heartbeat brings the next one; a refresh only
    // when a heartbeat was late and the grant is about to run out. A seek refreshes at once
    // (the grant opens the key periods around the playhead).
    this.expires = new Date(started.token_expires_at).getTime();
    this.timers.push(
      setInterval(() => {
        if (this.expires - Date.now() < 15000) this.refresh();
      }, 5000),
    );
    this.timers.push(setInterval(() => this.heartbeat(), started.heartbeat_interval_seconds * 1000));
    this.lastTime = from;
    video.addEventListener("timeupdate", this.countWatched);
    video.addEventListener("seeking", this.refresh);
    return hls;
  }

  countWatched() {
    const now = this.video.currentTime;
    const step = now - this.lastTime;
    if (step > 0 && step < 2) this.watched += step; // seeks are not watching
    this.lastTime = now;
  }

  renew(grant) {
    if (grant) {
      this.token = grant.token;
      this.expires = new Date(grant.token_expires_at).getTime();
    }
    return grant;
  }

  async refresh() {
    if (!this.session) return null;
    const path = `/v1/playback/sessions/${this.session.session_id}/token`;
    const body = { position_seconds: this.video.currentTime };
    return this.renew(await grantCall(path, this.token, this.device, body).catch((e) => this.onError(e)));
  }

  async heartbeat() {
    if (!this.session) return null;
    const watched = this.watched;
    this.watched = 0;
    this.seq += 1;
    const path = `/v1/playback/sessions/${this.session.session_id}/heartbeat`;
    const body = { seq: this.seq, position_seconds: this.video.currentTime, watched_seconds: watched };
    return this.renew(await grantCall(path, this.token, this.device, body).catch((e) => this.onError(e)));
  }

  // Leaving: one last heartbeat (the playhead is where "continue watching" resumes), then
  // the stop that frees the stream slot.
  async stop() {
    this.timers.forEach(clearInterval);
    this.timers = [];
    this.video.removeEventListener("timeupdate", this.countWatched);
    this.video.removeEventListener("seeking", this.refresh);
    if (!this.session) return;
    await this.heartbeat().catch(() => {});
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    const id = this.session.session_id;
    this.session = null;
    await grantCall(`/v1/playback/sessions/${id}/stop`, this.token, this.device).catch(() => {});
  }
}
