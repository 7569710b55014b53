// A viewer's journey through the API with a client generated from its OpenAPI document:
// openapi-typescript turns /openapi.json into ./schema.d.ts, openapi-fetch types every call
// with it, and tsc refuses this file when the API no longer matches what an app was built
// against (a renamed field, a removed route, a changed success status).
// tests/playback/test_generated_client.py generates, type-checks and runs it under Node.
import { existsSync, readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type PaymentSheet = components["schemas"]["PaymentSheetRead"];

const baseUrl = process.env.POCKETCINEMA_URL ?? "http://127.0.0.1:8000";
const titleId = process.env.POCKETCINEMA_TITLE_ID ?? "";
const email = process.env.POCKETCINEMA_EMAIL ?? `journey-${Date.now()}@example.com`;
// The e-mail's confirmation code, as the person reads it from their mailbox: the test
// writes it to this file once the mail is out.
const codeFile = process.env.POCKETCINEMA_CODE_FILE ?? "verification-code.txt";
const device = "journey-phone";
const api = createClient<paths>({ baseUrl });

function fail(step: string, status: number, error: { code: string; detail: string }): never {
  throw new Error(`${step}: ${status} ${error.code}: ${error.detail}`);
}

async function mailedCode(): Promise<string> {
  for (let waited = 0; waited < 120_000; waited += 200) {
    if (existsSync(codeFile)) return readFileSync(codeFile, "utf8").trim();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("verify e-mail: no code arrived");
}

async function main(): Promise<void> {
  const password = "a long enough journey passphrase";

  const signUp = await api.POST("/v1/auth/signup", {
    body: { email, password, device_id: device },
  });
  if (signUp.error) fail("sign up", signUp.response.status, signUp.error);

  const code = await mailedCode();
  const verified = await api.POST("/v1/account/email/verify", { body: { email, code } });
  if (verified.error) fail("verify e-mail", verified.response.status, verified.error);

  const login = await api.POST("/v1/auth/login", {
    body: { email, password, device_id: device },
  });
  if (login.error) fail("log in", login.response.status, login.error);
  const auth = { Authorization: `Bearer ${login.data.access_token}` };

  // The catalog in two languages: the same title, each answer in its own locale.
  const names: Record<string, string> = {};
  for (const lang of ["en", "fr"]) {
    const page = await api.GET("/v1/titles", { params: { query: { lang } } });
    if (page.error) fail(`catalog (${lang})`, page.response.status, page.error);
    const title = page.data.items.find((item) => item.id === titleId);
    if (!title) throw new Error(`catalog (${lang}): title ${titleId} is not listed`);
    names[title.locale] = title.name;
  }

  // Buy with the sandbox: the PaymentSheet's fields are typed from the 201 answer, and a
  // retry with the same Idempotency-Key answers the same payment (200), never a second one.
  const attempt = crypto.randomUUID();
  const bought = await api.POST("/v1/purchases", {
    params: { header: { "Idempotency-Key": attempt } },
    body: { title_id: titleId },
    headers: auth,
  });
  if (bought.error) fail("purchase", bought.response.status, bought.error);
  const sheet: PaymentSheet = bought.data;
  const retried = await api.POST("/v1/purchases", {
    params: { header: { "Idempotency-Key": attempt } },
    body: { title_id: titleId },
    headers: auth,
  });
  if (retried.error) fail("purchase retry", retried.response.status, retried.error);
  const paid = await api.POST("/v1/sandbox/payments/{payment_intent_id}/confirm", {
    params: { path: { payment_intent_id: sheet.payment_intent_id } },
    body: { payment_method: "pm_card_visa" },
    headers: auth,
  });
  if (paid.error) fail("pay", paid.response.status, paid.error);
  const ticketId = paid.data.ticket.id;

  const started = await api.POST("/v1/playback/sessions", {
    body: { ticket_id: ticketId },
    headers: auth,
  });
  if (started.error) fail("start", started.response.status, started.error);
  const session = started.data.session_id;
  const grant = (token: string) => ({
    params: {
      path: { session_id: session },
      header: { "X-Device-Id": device },
    },
    headers: { Authorization: `Bearer ${token}` },
  });

  const refreshed = await api.POST("/v1/playback/sessions/{session_id}/token", {
    ...grant(started.data.token),
    body: { position_seconds: 2 },
  });
  if (refreshed.error) fail("refresh", refreshed.response.status, refreshed.error);

  const beat = await api.POST("/v1/playback/sessions/{session_id}/heartbeat", {
    ...grant(refreshed.data.token),
    body: { seq: 1, position_seconds: 6, watched_seconds: 6 },
  });
  if (beat.error) fail("heartbeat", beat.response.status, beat.error);

  // Resume: the library says where the viewer stopped; playback starts there again.
  const ticket = await api.GET("/v1/me/tickets/{ticket_id}", {
    params: { path: { ticket_id: ticketId } },
    headers: auth,
  });
  if (ticket.error) fail("my ticket", ticket.response.status, ticket.error);
  const resumeAt = ticket.data.resume_position_seconds;
  const resumed = await api.POST("/v1/playback/sessions", {
    body: { ticket_id: ticketId, position_seconds: resumeAt },
    headers: auth,
  });
  if (resumed.error) fail("resume", resumed.response.status, resumed.error);

  const stopped = await api.POST("/v1/playback/sessions/{session_id}/stop", {
    params: { path: { session_id: resumed.data.session_id }, header: { "X-Device-Id": device } },
    headers: { Authorization: `Bearer ${resumed.data.token}` },
  });
  if (stopped.error) fail("stop", stopped.response.status, stopped.error);

  console.log(
    JSON.stringify({
      user_id: login.data.user_id,
      verified_user_id: verified.data.user_id,
      names,
      purchase_statuses: [bought.response.status, retried.response.status],
      same_payment: retried.data.payment_intent_id === sheet.payment_intent_id,
      has_client_secret: sheet.client_secret.length > 0,
      amount_minor: sheet.amount_minor,
      currency: sheet.currency,
      ticket_id: ticketId,
      ticket_state: paid.data.ticket.state,
      key_periods: refreshed.data.key_periods,
      heartbeat_recorded: beat.data.recorded,
      resume_at: resumeAt,
      resumed_session: resumed.data.session_id,
      first_session: session,
      stop_status: stopped.response.status,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
