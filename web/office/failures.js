// What failed in the background: releases whose transcoding failed (code, step, reason, and a
// retry through the same route a studio uses) and jobs that gave up with their last error.
import { api } from "/web/shared/api.js";
import { t, number } from "/web/shared/i18n.js";
import { h, clear, action, showStatus } from "/web/shared/ui.js";
import { cards, code, section, when } from "./kit.js";

export async function failuresView() {
  const out = h("div", {});
  const render = async () => {
    const [releases, jobs] = await Promise.all([api("/v1/admin/failed-releases"), api("/v1/admin/failed-jobs")]);
    const retry = (release) =>
      action(async () => {
        await api(release.retry_path, { method: "POST" });
        showStatus(t("failures.retried"));
        await render();
      });
    clear(
      out,
      section(
        t("failures.releases"),
        h("p", { class: "muted" }, t("failures.releases_count", { count: releases.total })),
        releases.items.length
          ? cards(
              [t("failures.release"), t("failures.code"), t("failures.step"), t("failures.reason"), t("failures.when"), ""],
              releases.items.map((r) => [
                [h("div", {}, r.label), code(r.id)],
                code(r.failure_code),
                r.step ? t("step." + r.step) : "—",
                r.failure_reason || "—",
                when(r.status_changed_at),
                h("button", { type: "button", onclick: retry(r), "aria-label": t("failures.retry_release", { label: r.label }) }, t("action.retry")),
              ]),
            )
          : null,
      ),
      section(
        t("failures.jobs"),
        h("p", { class: "muted" }, t("failures.jobs_count", { count: jobs.total })),
        jobs.items.length
          ? cards(
              [t("failures.task"), t("failures.args"), t("failures.attempts"), t("failures.error"), t("failures.when")],
              jobs.items.map((j) => [
                code(j.task),
                code(JSON.stringify(j.args)),
                number(j.attempts),
                h("pre", { class: "error-text" }, j.last_error || "—"),
                when(j.failed_at),
              ]),
            )
          : null,
      ),
    );
  };
  await render();
  return out;
}
