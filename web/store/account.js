// The account pages: sign up, verify the e-mail address with the mailed code, sign in,
// reset a forgotten password, and for a signed-in viewer: export my data, delete my account.
import { api, deviceId, keepTokens, me, signIn, signOut, signedIn } from "/web/shared/api.js";
import { t } from "/web/shared/i18n.js";
import { action, field, h, showStatus } from "/web/shared/ui.js";
import { flash, goBackAfterSignIn, rememberWhere } from "./common.js";

function input(name, type, extra = {}) {
  return h("input", { name, type, required: true, ...extra });
}

function form(heading, fields, submit, onsubmit, ...after) {
  return h(
    "form",
    { class: "card checkout", onsubmit: action(onsubmit) },
    h("h2", {}, heading),
    fields,
    h("div", { class: "actions" }, h("button", { type: "submit" }, submit)),
    after,
  );
}

export function signInView() {
  if (signedIn()) return accountView();
  const email = input("email", "email", { autocomplete: "username", maxlength: 320 });
  const password = input("password", "password", { autocomplete: "current-password", maxlength: 1024 });
  return form(
    t("auth.sign_in"),
    [field(t("auth.email"), email), field(t("auth.password"), password)],
    t("auth.sign_in"),
    async () => {
      await signIn(email.value.trim(), password.value);
      goBackAfterSignIn();
    },
    h("p", {}, h("a", { href: "#/signup" }, t("account.sign_up")), " · ", h("a", { href: "#/reset" }, t("account.forgot"))),
  );
}

export function signUpView() {
  const email = input("email", "email", { autocomplete: "email", maxlength: 320 });
  const password = input("password", "password", { autocomplete: "new-password", minlength: 10, maxlength: 256 });
  const name = h("input", { name: "display_name", type: "text", autocomplete: "nickname", maxlength: 200 });
  return form(
    t("account.sign_up"),
    [
      field(t("auth.email"), email),
      field(t("account.new_password_hint"), password),
      field(t("account.display_name"), name),
    ],
    t("account.sign_up"),
    async () => {
      await api("/v1/auth/signup", {
        method: "POST",
        body: {
          email: email.value.trim(),
          password: password.value,
          display_name: name.value.trim() || null,
          device_id: deviceId(),
        },
      });
      location.hash = `#/verify/${encodeURIComponent(email.value.trim())}`;
    },
    h("p", {}, h("a", { href: "#/signin" }, t("account.have_account"))),
  );
}

function codeInput() {
  return input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 });
}

export function verifyView({ email }) {
  const code = codeInput();
  return form(
    t("account.verify"),
    [h("p", {}, t("account.code_sent", { email })), field(t("account.code"), code)],
    t("account.verify_button"),
    async () => {
      keepTokens(
        await api("/v1/account/email/verify", {
          method: "POST",
          body: { email, code: code.value.trim(), device_id: deviceId() },
        }),
      );
      flash(t("account.verified"));
      goBackAfterSignIn();
    },
  );
}

export function resetView() {
  const email = input("email", "email", { autocomplete: "username", maxlength: 320 });
  // The code and the new password come in a second step; disabled until then, so the
  // browser's form checks skip them.
  const code = codeInput();
  code.disabled = true;
  const password = input("new_password", "password", { autocomplete: "new-password", minlength: 10, maxlength: 256, disabled: true });
  const second = h(
    "div",
    { hidden: true },
    field(t("account.code"), code),
    field(t("account.new_password_hint"), password),
  );
  let asked = false;
  return form(
    t("account.reset"),
    [field(t("auth.email"), email), second],
    t("account.reset_button"),
    async () => {
      if (!asked) {
        await api("/v1/account/password/reset", { method: "POST", body: { email: email.value.trim() } });
        asked = true;
        second.hidden = false;
        code.disabled = password.disabled = false;
        code.focus();
        showStatus(t("account.reset_sent"));
        return;
      }
      keepTokens(
        await api("/v1/account/password/reset/confirm", {
          method: "POST",
          body: { email: email.value.trim(), code: code.value.trim(), new_password: password.value, device_id: deviceId() },
        }),
      );
      flash(t("account.reset_done"));
      location.hash = "#/account";
    },
  );
}

export async function accountView() {
  if (!signedIn()) {
    rememberWhere("#/account");
    return signInView();
  }
  const who = await me();
  const exportLink = h("a", { hidden: true, id: "export-file", download: "pocket-cinema-account.json" }, t("account.export_ready"));
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", maxlength: 1024 });
  const sure = h("input", { name: "sure", type: "checkbox", required: true });
  return [
    h(
      "section",
      { class: "card" },
      h("h2", {}, t("account.heading")),
      h("p", {}, t("account.signed_in_as", { email: who.email })),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            id: "export",
            onclick: action(async () => {
              const data = await api("/v1/account/export");
              const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
              exportLink.href = URL.createObjectURL(blob);
              exportLink.hidden = false;
              exportLink.focus();
            }),
          },
          t("account.export"),
        ),
        exportLink,
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: action(async () => {
              await signOut();
              location.hash = "#/";
            }),
          },
          t("auth.sign_out"),
        ),
      ),
    ),
    h(
      "form",
      {
        class: "card danger",
        onsubmit: action(async () => {
          await api("/v1/account/deletion", { method: "POST", body: { password: password.value || null } });
          await signOut();
          flash(t("account.deleted"));
          location.hash = "#/";
        }),
      },
      h("h2", {}, t("account.delete")),
      h("p", {}, t("account.delete_explained")),
      field(t("auth.password"), password),
      h("label", { class: "check" }, sure, t("account.delete_sure")),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "danger-button" }, t("account.delete_button"))),
    ),
  ];
}
