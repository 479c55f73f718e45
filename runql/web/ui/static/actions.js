// Stop, abort, restart and delete: each one bulk mutation for every selected run, with the
// per-run results shown (an error names the run and says why, e.g. ALREADY_FINISHED).

import { gql } from "./api.js";
import { h } from "./dom.js";

export const ACTIONS = [
  { label: "Stop", op: "StopRuns", field: "stopRuns", vars: (ids) => ({ ids, abort: false }), can: (r) => r.viewerCanStop },
  { label: "Abort", op: "StopRuns", field: "stopRuns", vars: (ids) => ({ ids, abort: true }), can: (r) => r.viewerCanStop },
  // Restart re-runs what did not end DONE; the server refuses runs that are not finished.
  { label: "Restart", op: "RestartRuns", field: "restartRuns", vars: (ids) => ({ ids }), can: () => true },
  { label: "Delete", op: "DeleteRuns", field: "deleteRuns", vars: (ids) => ({ ids }), can: (r) => r.viewerCanDelete, confirm: true },
];

/** Run `action` on `runs`; resolves to its per-run results (in request order). */
export async function perform(action, runs) {
  if (action.confirm && !window.confirm(`${action.label} ${runs.map((r) => r.name).join(", ")}?`)) return null;
  const data = await gql(action.op, action.vars(runs.map((r) => r.id)));
  return data[action.field].results;
}

/** A short report of one action: how many applied, and each refusal with its reason. */
export function report(action, results) {
  const failed = results.filter((r) => r.error);
  return h("div", { class: failed.length ? "notice warn" : "notice", role: "status" },
    `${action.label}: ${results.length - failed.length} of ${results.length} applied.`,
    failed.length ? h("ul", {}, failed.map((r) =>
      h("li", {}, h("b", {}, r.name ?? `run ${r.runId}`), ` ${r.error.code}: ${r.error.message}`))) : null,
  );
}

/** The action buttons for `selected()` runs; `done(action, results)` after each. */
export function actionBar(selected, done, fail) {
  const buttons = ACTIONS.map((action) => {
    const button = h("button", { type: "button", class: `act act-${action.label.toLowerCase()}` }, action.label);
    button.addEventListener("click", async () => {
      const runs = selected().filter(action.can);
      if (!runs.length) return;
      button.disabled = true;
      try {
        const results = await perform(action, runs);
        if (results) done(action, results);
      } catch (error) {
        fail(error);
      } finally {
        button.disabled = false;
        refresh();
      }
    });
    return [action, button];
  });
  const refresh = () => {
    const runs = selected();
    for (const [action, button] of buttons) button.disabled = !runs.some(action.can);
  };
  return { el: h("span", { class: "actions" }, buttons.map(([, b]) => b)), refresh };
}
