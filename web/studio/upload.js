// Resumable upload of a master through the API's multipart protocol:
//   POST /v1/studio/releases/{id}/uploads  -> the upload, its part size and transport
//   POST /v1/studio/uploads/{id}/part-urls -> where to PUT each part (S3 presigned, or this API)
//   PUT <target>                            -> one part, with its SHA-256 (x-amz-checksum-sha256)
//   POST /v1/studio/uploads/{id}/complete   -> the parts joined into the file
// The part size comes from the upload's answer (the server decides it), so a test server with
// small parts needs nothing special here. Four parts travel at once. The upload id and the
// file's identity are kept in localStorage: after a reload the user picks the same file again,
// GET /v1/studio/uploads/{id} says which parts arrived, and only the others are sent. A part
// whose request fails for a reason that may pass (network, 5xx, 408, 429) is tried again
// with exponential back-off; a refusal (4xx with a problem code) stops the upload.

import { api, ApiError, authHeaders, refreshSignIn } from "/web/shared/api.js";

const STORE = "pc-studio-uploads";
export const PARALLEL_PARTS = 4;
const MAX_TRIES = 8;
const SPEED_WINDOW_MS = 8000;

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}");
  } catch {
    return {};
  }
}

function remember(releaseId, entry) {
  const all = saved();
  if (entry) all[releaseId] = entry;
  else delete all[releaseId];
  localStorage.setItem(STORE, JSON.stringify(all));
}

// The interrupted upload of this release, if any: { uploadId, name, size, lastModified }.
export function interruptedUpload(releaseId) {
  return saved()[releaseId] || null;
}

export function forgetUpload(releaseId) {
  remember(releaseId, null);
}

function identity(file) {
  return { name: file.name, size: file.size, lastModified: file.lastModified };
}

function sameFile(entry, file) {
  return entry.name === file.name && entry.size === file.size && entry.lastModified === file.lastModified;
}

function base64(buffer) {
  let text = "";
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function sha256(buffer) {
  return base64(await crypto.subtle.digest("SHA-256", buffer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Worth another try: no answer at all, or an answer that says "later".
function transient(error) {
  return !(error instanceof ApiError) || error.status >= 500 || error.status === 408 || error.status === 429 ||
    error.code === "part_checksum_mismatch"; // bytes damaged on the way: send them again
}

export class MasterUpload {
  // events: progress({ sent, total, speed, eta, partsDone, partCount }), retry({ part, attempt, delay, error })
  constructor(releaseId, file, events = {}) {
    this.releaseId = releaseId;
    this.file = file;
    this.events = events;
    this.samples = [];
    this.inFlight = new Map(); // part number -> bytes of it sent so far
    this.stopped = false;
  }

  async open() {
    const entry = interruptedUpload(this.releaseId);
    if (entry && sameFile(entry, this.file)) {
      try {
        const upload = await api(`/v1/studio/uploads/${entry.uploadId}`);
        // Completed before the page went away (only the page did not hear it): done.
        if (upload.status === "completed") return upload;
        if (upload.status === "open" && (await this.matches(upload))) return upload;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
    } else if (entry) {
      // Another file was chosen: the old upload's parts are of no use any more.
      await api(`/v1/studio/uploads/${entry.uploadId}`, { method: "DELETE" }).catch(() => {});
    }
    forgetUpload(this.releaseId);
    const upload = await api(`/v1/studio/releases/${this.releaseId}/uploads`, {
      method: "POST",
      body: {
        kind: "master",
        filename: this.file.name,
        size_bytes: this.file.size,
        content_type: this.file.type || null,
      },
    });
    remember(this.releaseId, { uploadId: upload.id, ...identity(this.file) });
    return upload;
  }

  // Name, size and date can coincide; the checksum of a part the server holds cannot.
  async matches(upload) {
    const first = upload.uploaded_parts.find((p) => p.checksum_sha256);
    if (!first) return true;
    return (await sha256(await this.slice(upload, first.number).arrayBuffer())) === first.checksum_sha256;
  }

  slice(upload, number) {
    const start = (number - 1) * upload.part_size;
    return this.file.slice(start, Math.min(start + upload.part_size, upload.size_bytes));
  }

  // Sends what the server lacks and completes; resolves to the completed asset.
  async run() {
    const upload = await this.open();
    this.upload = upload;
    if (upload.status === "completed") {
      forgetUpload(this.releaseId);
      return { size_bytes: upload.size_bytes };
    }
    const have = new Set(upload.uploaded_parts.map((p) => p.number));
    this.done = upload.uploaded_parts.reduce((sum, p) => sum + p.size, 0);
    this.partsDone = have.size;
    this.resumedParts = have.size;
    const todo = [];
    for (let n = 1; n <= upload.part_count; n += 1) if (!have.has(n)) todo.push(n);
    this.report();
    const worker = async () => {
      while (todo.length && !this.stopped) await this.sendPart(todo.shift());
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, todo.length) }, worker));
    if (this.stopped) return null;
    const asset = await api(`/v1/studio/uploads/${upload.id}/complete`, { method: "POST" });
    forgetUpload(this.releaseId);
    return asset;
  }

  stop() {
    this.stopped = true;
    for (const xhr of this.requests || []) xhr.abort();
  }

  async sendPart(number) {
    const buffer = await this.slice(this.upload, number).arrayBuffer();
    const checksum = await sha256(buffer);
    for (let attempt = 1; ; attempt += 1) {
      try {
        const [target] = await api(`/v1/studio/uploads/${this.upload.id}/part-urls`, {
          method: "POST",
          body: { parts: [{ number, checksum_sha256: checksum }] },
        });
        await this.put(target, buffer, number);
        this.inFlight.delete(number);
        this.done += buffer.byteLength;
        this.partsDone += 1;
        this.report();
        return;
      } catch (error) {
        this.inFlight.delete(number);
        if (this.stopped || !transient(error) || attempt >= MAX_TRIES) throw error;
        const delay = Math.min(30_000, 1000 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
        this.events.retry?.({ part: number, attempt, delay, error });
        await sleep(delay);
      }
    }
  }

  // XMLHttpRequest, not fetch: only it reports how much of a request body has been sent.
  put(target, buffer, number) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      (this.requests ||= new Set()).add(xhr);
      xhr.open(target.method, target.url);
      const headers = { ...target.headers };
      // Parts sent to this API carry the sign-in; presigned S3 URLs carry their own signature.
      if (this.upload.transport === "api") Object.assign(headers, authHeaders());
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        this.inFlight.set(number, event.loaded);
        this.report();
      };
      xhr.onloadend = async () => {
        this.requests.delete(xhr);
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        if (xhr.status === 0) return reject(new Error("network error"));
        if (xhr.status === 401 && this.upload.transport === "api" && (await refreshSignIn())) {
          return reject(new ApiError(503, { code: "retry_after_refresh" }));
        }
        let problem = {};
        try {
          problem = JSON.parse(xhr.responseText);
        } catch {
          problem = { title: xhr.statusText };
        }
        reject(new ApiError(xhr.status, problem));
      };
      xhr.send(buffer);
    });
  }

  report() {
    const now = performance.now();
    let sent = this.done;
    for (const bytes of this.inFlight.values()) sent += bytes;
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > SPEED_WINDOW_MS) this.samples.shift();
    const [t0, s0] = this.samples[0];
    const speed = now - t0 > 500 ? ((sent - s0) * 1000) / (now - t0) : 0;
    const total = this.upload.size_bytes;
    this.events.progress?.({
      sent,
      total,
      speed,
      eta: speed > 0 ? (total - sent) / speed : null,
      partsDone: this.partsDone,
      partCount: this.upload.part_count,
      resumedParts: this.resumedParts,
    });
  }
}
