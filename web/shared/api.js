// The web apps' one door to the public API: bearer tokens (rotated with the refresh token),
// this browser's device id, and problem+json errors turned into ApiError with their stable code.
// The apps hold no privilege of their own: what a signed-in user may do is what /v1 allows.

const STORE = "pc-web-auth";
const DEVICE = "pc-device"; // shared with /play, so one browser is one device

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_" + status;
    this.problem = problem;
  }
}

export function deviceId() {
  let id = localStorage.getItem(DEVICE);
  if (!id) {
    id = "web-" + crypto.randomUUID();
    localStorage.setItem(DEVICE, id);
  }
  return id;
}

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

function save(tokens) {
  if (tokens) localStorage.setItem(STORE, JSON.stringify(tokens));
  else localStorage.removeItem(STORE);
}

export function signedIn() {
  return saved() !== null;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

let refreshing = null;

async function refresh() {
  // One refresh at a time: a refresh token works once, a second use would end the sign-in.
  if (!refreshing) {
    refreshing = (async () => {
      const tokens = saved();
      if (!tokens) return false;
      const response = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Device-Id": deviceId() },
        body: JSON.stringify({ refresh_token: tokens.refresh_token, device_id: deviceId() }),
      });
      if (!response.ok) {
        save(null);
        return false;
      }
      save(await response.json());
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// fetch() with auth: returns the Response (for downloads and blobs); throws ApiError if not ok.
export async function request(path, { method = "GET", body, headers = {}, raw = false, signal } = {}) {
  const send = () => {
    const tokens = saved();
    const h = { "X-Device-Id": deviceId(), Accept: "application/json", ...headers };
    if (tokens) h.Authorization = "Bearer " + tokens.access_token;
    let payload = body;
    if (body !== undefined && !raw) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    return fetch(path, { method, headers: h, body: payload, signal });
  };
  let response = await send();
  if (response.status === 401 && saved() && (await refresh())) response = await send();
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response;
}

// JSON in, JSON out (null for 204).
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export async function signIn(email, password) {
  const tokens = await api("/v1/auth/login", {
    method: "POST",
    body: { email, password, device_id: deviceId() },
  });
  save(tokens);
  return api("/v1/me");
}

export async function signOut() {
  const tokens = saved();
  save(null);
  if (tokens) {
    await fetch("/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    }).catch(() => {});
  }
}

export function me() {
  return api("/v1/me");
}

// An authenticated image or file as a blob: URL (charts, artwork previews, downloads).
export async function blobUrl(path) {
  const response = await request(path, { headers: { Accept: "*/*" } });
  return URL.createObjectURL(await response.blob());
}

// Tokens that an account step answered with (e-mail verified, password reset): the user is
// signed in on this browser from now on, as after signIn().
export function keepTokens(tokens) {
  save(tokens);
}

// Added for requests made outside fetch() (XMLHttpRequest reports upload progress, fetch does
// not): the headers request() would send, and the refresh it does after a 401.
export function authHeaders() {
  const tokens = saved();
  const h = { "X-Device-Id": deviceId() };
  if (tokens) h.Authorization = "Bearer " + tokens.access_token;
  return h;
}

export function refreshSignIn() {
  return refresh();
}
