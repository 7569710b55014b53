// Pocket Cinema playback grants, checked at a CDN edge (a CloudFront Function, runtime
// cloudfront-js-2.0, on viewer requests for /hls/*), with nothing but the shared secret:
// the same checks as the API's media route (drm/grants.py, playback/service.py).
//
// A grant is "<payload>.<mac>": payload is base64url JSON, mac is base64url of the first
// 16 bytes of HMAC-SHA256("pcg1." + payload) under POCKETCINEMA_PLAYBACK_SECRET_KEY. The
// request is allowed when the mac is right, the grant has not expired, and the path is
// one file directly inside one of the grant's rendition folders of the grant's release:
// /<pre>/<one of ren>/<file>, and in a watermarked rendition the session's own variant. Players send the grant as "Authorization: Bearer <grant>"
// (hls.js xhrSetup) or, if they cannot set headers, as ?token=<grant>.
//
// Deploy: replace SECRET below (or read it from a CloudFront KeyValueStore). Tests run this
// file under node (tests/drm/test_grants.py).
"use strict";

var crypto = require("crypto");

var SECRET = "replace-with-POCKETCINEMA_PLAYBACK_SECRET_KEY";
var MAC_BYTES = 16;

function toBase64Url(b64) {
  return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  return Buffer.from(b64, "base64").toString("utf8");
}

function sameText(a, b) {
  // Constant time for equal lengths: the mac must not be guessable byte by byte.
  if (a.length !== b.length) return false;
  var diff = 0;
  for (var i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function macOf(payload, secret) {
  var hex = crypto.createHmac("sha256", secret).update("pcg1." + payload).digest("hex");
  return toBase64Url(Buffer.from(hex.slice(0, MAC_BYTES * 2), "hex").toString("base64"));
}

// {ok: true, grant} or {ok: false, status, code}; nowSeconds is Unix time.
function checkGrant(token, path, secret, nowSeconds) {
  var dot = token.indexOf(".");
  if (dot <= 0) return { ok: false, status: 401, code: "invalid_grant" };
  var payload = token.slice(0, dot);
  if (!sameText(token.slice(dot + 1), macOf(payload, secret))) {
    return { ok: false, status: 401, code: "invalid_grant" };
  }
  var grant;
  try {
    grant = JSON.parse(fromBase64Url(payload));
  } catch (e) {
    return { ok: false, status: 401, code: "invalid_grant" };
  }
  if (!(grant.exp > nowSeconds)) return { ok: false, status: 401, code: "grant_expired" };
  var prefix = "/" + grant.pre + "/";
  if (path.indexOf(prefix) !== 0) return { ok: false, status: 403, code: "media_not_granted" };
  var rest = path.slice(prefix.length).split("/");
  var file = rest[1];
  if (rest.length !== 2 || grant.ren.indexOf(rest[0]) < 0 || !file || file === "." ||
      file === ".." || file.indexOf("\\") >= 0) {
    return { ok: false, status: 403, code: "media_not_granted" };
  }
  if (!ownVariant(grant, rest[0], file)) {
    return { ok: false, status: 403, code: "media_not_granted" };
  }
  return { ok: true, grant: grant };
}

// Forensic watermark (drm/watermark.py): in a rendition the grant lists under "wm", a
// session gets only its own variant of each segment that carries a bit (seg_N.m4s, or
// pP_seg_N.m4s in the cbcs package, from "<folder>" when bit N-1 of its codeword is 0,
// from "<folder>.b" when it is 1); with "wme" = k only every k-th segment (N-1 a multiple
// of k) carries one, the others come from variant A. Bit i is bit (i mod 8) of
// byte ((i mod 256) >> 3) of SHA-256("pocketcinema/watermark/v1:<sid>:<i >> 8>").
var WM_LABEL = "pocketcinema/watermark/v1:";

function codewordBit(sessionId, index) {
  var digest = crypto.createHash("sha256").update(WM_LABEL + sessionId + ":" + (index >> 8))
    .digest("hex");
  var byte = parseInt(digest.substr(((index & 255) >> 3) * 2, 2), 16);
  return (byte >> (index & 7)) & 1;
}

function ownVariant(grant, folder, file) {
  var marked = grant.wm || [];
  var isB = folder.length > 2 && folder.slice(-2) === ".b" &&
    marked.indexOf(folder.slice(0, -2)) >= 0;
  if (!isB && marked.indexOf(folder) < 0) return true;
  var found = /^(?:p\d{1,5}_)?seg_(\d{1,9})\.m4s$/.exec(file);
  if (!found) return !isB;  // init segment and I-frame fragments come from variant A
  var index = parseInt(found[1], 10) - 1;
  if (index % (grant.wme || 1) !== 0) return !isB;  // carries no bit: variant A only
  return codewordBit(grant.sid, index) === (isB ? 1 : 0);
}

function refuse(status, code) {
  return {
    statusCode: status,
    statusDescription: code,
    headers: {
      "content-type": { value: "application/problem+json" },
      "cache-control": { value: "no-store" },
    },
    body: JSON.stringify({ status: status, code: code, title: code, detail: code }),
  };
}

function handler(event) {
  var request = event.request;
  var token = null;
  var auth = request.headers.authorization;
  if (auth && auth.value.indexOf("Bearer ") === 0) token = auth.value.slice(7).trim();
  else if (request.querystring.token) token = request.querystring.token.value;
  if (!token) return refuse(401, "not_authenticated");
  var checked = checkGrant(token, request.uri, SECRET, Math.floor(Date.now() / 1000));
  if (!checked.ok) return refuse(checked.status, checked.code);
  var device = request.headers["x-device-id"];
  if (device && device.value.trim() !== checked.grant.dev) return refuse(403, "device_mismatch");
  return request;
}

if (typeof module !== "undefined") module.exports = { checkGrant: checkGrant, handler: handler };
