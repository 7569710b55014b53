// The office: a client of the public API only (web/shared/api.js).
import { signedIn } from "/web/shared/api.js";
import { loadMessages, translate, t } from "/web/shared/i18n.js";
import { h, clear } from "/web/shared/ui.js";

await loadMessages("office");
translate();
clear(document.getElementById("view"), h("p", {}, signedIn() ? t("status.loading") : t("auth.sign_in")));
