// One release: upload its master (resumable, web/studio/upload.js), follow transcoding live,
// see warnings and failures (with a retry), and review the detected audio and subtitle tracks.
import { api } from "/web/shared/api.js";
import { bytes, number, t } from "/web/shared/i18n.js";
import { action, clear, field, h, showError, showStatus } from "/web/shared/ui.js";
import { statusBadge } from "./titles.js";
import { MasterUpload, PARALLEL_PARTS, forgetUpload, interruptedUpload } from "./upload.js";

const BUSY = new Set(["queued", "probing", "encoding", "packaging"]);
const POLL_MS = 1500;
const ROLES = ["original", "dub", "commentary", "description"];
const LOCALE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function uploadCard(release, onUploaded) {
  const input = h("input", { type: "file", name: "master", accept: "video/*,.mov,.mxf,.mkv,.mp4" });
  const bar = h("progress", { max: 1, value: 0, "aria-label": t("upload.progress") });
  const figures = h("p", { class: "figures", "aria-live": "polite" });
  const note = h("p", { class: "warn", role: "status" });
  const resume = interruptedUpload(release.id);
  const hint = resume
    ? h("p", { class: "resume-hint" }, t("upload.resume_hint", { name: resume.name, size: bytes(resume.size) }))
    : h("p", { class: "muted" }, t("upload.hint", { parts: PARALLEL_PARTS }));
  let current = null;
  const retryButton = h("button", { type: "button", hidden: true, onclick: action(() => go()) }, t("upload.resume"));

  async function go() {
    const file = input.files[0];
    if (!file) return;
    retryButton.hidden = true;
    note.textContent = "";
    current?.stop();
    const upload = (current = new MasterUpload(release.id, file, {
      progress: (p) => {
        bar.max = p.total;
        bar.value = p.sent;
        figures.textContent = t("upload.figures", {
          sent: bytes(p.sent),
          total: bytes(p.total),
          percent: number(p.sent / p.total, { style: "percent", maximumFractionDigits: 1 }),
          parts: p.partsDone,
          count: p.partCount,
          speed: p.speed ? bytes(p.speed) + "/s" : "—",
          eta: duration(p.eta),
        });
        if (p.resumedParts) hint.textContent = t("upload.resumed", { parts: p.resumedParts });
        note.textContent = "";
      },
      retry: ({ part, attempt, delay }) => {
        // A dropped connection is normal on a long upload: say so, not as an error.
        note.textContent = t("upload.retrying", { part, attempt, seconds: Math.ceil(delay / 1000) });
      },
    }));
    try {
      const asset = await upload.run();
      if (!asset) return;
      figures.textContent = t("upload.done", { size: bytes(asset.size_bytes) });
      await onUploaded();
    } catch (error) {
      if (upload.stopped) return; // replaced by an upload of another file
      retryButton.hidden = false;
      showError(error);
    }
  }

  input.addEventListener("change", action(go));
  return h(
    "section",
    { class: "upload", "aria-labelledby": "upload-h" },
    h("h3", { id: "upload-h" }, t("upload.title")),
    hint,
    field(t("upload.choose"), input),
    bar,
    figures,
    note,
    retryButton,
  );
}

// Transcoding can start again only from a master the API accepted ("uploaded").
const usableMaster = (release) => release.assets.some((a) => a.kind === "master" && a.status === "uploaded");

function progressCard(release) {
  const busy = BUSY.has(release.status);
  const parts = [
    h("p", {}, t("release.status"), ": ", statusBadge(release.status)),
  ];
  if (busy) {
    parts.push(
      h("progress", { max: 100, value: release.progress_percent, "aria-label": t("release.progress") }),
      h("p", { class: "figures" }, t("release.phase", { percent: number(release.progress_percent / 100, { style: "percent", maximumFractionDigits: 1 }), eta: duration(release.eta_seconds) })),
    );
  }
  if (release.status === "ready") {
    parts.push(h("p", { class: "ok" }, t("release.ready", { duration: duration(release.duration_seconds) })));
  }
  if (release.status === "failed") {
    parts.push(
      h("div", { class: "failure", role: "alert" },
        h("p", { class: "error" }, `${release.failure_reason || ""} (${release.failure_code})`),
        usableMaster(release) ? null : h("p", {}, t("release.upload_new_master")),
        !usableMaster(release) ? null : h("button", {
          type: "button",
          onclick: action(async () => {
            await api(`/v1/studio/releases/${release.id}/transcode`, { method: "POST" });
            showStatus(t("release.retried"));
            window.dispatchEvent(new HashChangeEvent("hashchange"));
          }),
        }, t("action.retry")),
      ),
    );
  }
  if (release.warnings.length) {
    parts.push(
      h("h4", {}, t("release.warnings")),
      h("ul", { class: "warnings" }, release.warnings.map((w) => h("li", { class: "warn" }, `${w.detail} (${w.code}, ${w.step})`))),
    );
  }
  return h("div", { class: "progress-card" }, parts);
}

function trackRow(release, track) {
  const language = h("input", { value: track.language, maxlength: 35, size: 8, "aria-label": t("tracks.language") });
  const name = h("input", { value: track.name, maxlength: 100, "aria-label": t("tracks.name") });
  const role = track.kind === "audio"
    ? h("select", { "aria-label": t("tracks.role") }, ROLES.map((r) => h("option", { value: r, selected: r === track.role }, t(`tracks.role.${r}`))))
    : h("span", { class: "muted" }, "—");
  const result = h("span", { role: "status" });
  const save = h("button", {
    type: "button",
    class: "secondary",
    onclick: action(async () => {
      result.textContent = "";
      if (!LOCALE.test(language.value)) {
        language.setAttribute("aria-invalid", "true");
        result.className = "error";
        result.textContent = t("field.locale_invalid");
        return;
      }
      const changes = {};
      if (language.value !== track.language) changes.language = language.value;
      if (name.value !== track.name) changes.name = name.value;
      if (track.kind === "audio" && role.value !== track.role) changes.role = role.value;
      if (!Object.keys(changes).length) return;
      try {
        Object.assign(track, await api(`/v1/studio/releases/${release.id}/tracks/${track.id}`, { method: "PATCH", body: changes }));
        result.className = "ok";
        result.textContent = t("status.saved");
      } catch (error) {
        result.className = "error";
        result.textContent = `${error.message} (${error.code})`;
      }
    }),
  }, t("action.save"));
  return h("tr", { dataset: { track: track.id } },
    h("td", { "data-label": t("tracks.kind") }, t(`tracks.kind.${track.kind}`), h("div", { class: "muted" }, [track.codec, track.channel_layout, track.detected_language && t("tracks.detected", { tag: track.detected_language })].filter(Boolean).join(" · "))),
    h("td", { "data-label": t("tracks.language") }, language),
    h("td", { "data-label": t("tracks.name") }, name),
    h("td", { "data-label": t("tracks.role") }, role),
    h("td", {}, track.status === "unsupported" ? h("span", { class: "warn" }, t("tracks.unsupported")) : ""),
    h("td", {}, save, " ", result),
  );
}

async function tracksCard(release) {
  const tracks = await api(`/v1/studio/releases/${release.id}/tracks`);
  if (!tracks.length) return null;
  return h("section", { "aria-labelledby": "tracks-h" },
    h("h3", { id: "tracks-h" }, t("tracks.title")),
    h("p", { class: "muted" }, t("tracks.hint")),
    h("div", { class: "table-wrap" }, h("table", { class: "tracks stack" },
      h("thead", {}, h("tr", {}, [t("tracks.kind"), t("tracks.language"), t("tracks.name"), t("tracks.role"), "", ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, tracks.map((track) => trackRow(release, track))),
    )),
  );
}

export async function releaseView({ id }) {
  let release = await api(`/v1/studio/releases/${id}`);
  const live = h("div", { "aria-live": "polite" }, progressCard(release));
  const tracks = h("div");
  const root = h("div", {},
    h("p", {}, h("a", { href: `#/titles/${release.title_id}` }, "← " + t("release.back"))),
    h("h2", {}, release.label),
  );
  if (!usableMaster(release) || interruptedUpload(id)) {
    root.append(uploadCard(release, async () => {
      forgetUpload(id);
      release = await api(`/v1/studio/releases/${id}/transcode`, { method: "POST" });
      clear(live, progressCard(release));
      poll();
    }));
  }
  root.append(h("section", { "aria-labelledby": "progress-h" }, h("h3", { id: "progress-h" }, t("release.progress")), live), tracks);

  const showTracks = async () => clear(tracks, await tracksCard(release));
  // Polls while the release is busy and its page is on screen.
  async function poll() {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (!root.isConnected) return;
      try {
        release = await api(`/v1/studio/releases/${id}`);
      } catch (error) {
        showError(error);
        return;
      }
      clear(live, progressCard(release));
      if (!BUSY.has(release.status)) {
        await showTracks();
        return;
      }
    }
  }
  if (BUSY.has(release.status)) poll();
  showTracks().catch(showError);
  return root;
}
