// One run: its jobs (the latest submission of each logical job), a job's retry history on
// demand, the jobs in order, and the spec, read only when opened (a heavy field). Kept
// live by its own runEvents(runIds:) subscription, from the runs list's cursor.

import { gql } from "./api.js";
import { actionBar, report } from "./actions.js";
import { badge, duration, h, when } from "./dom.js";

const key = (job) => `${job.jobNum}/${job.replicaNum}`;
const byOrder = (a, b) => a.jobNum - b.jobNum || a.replicaNum - b.replicaNum;

export class RunView {
  constructor(live, id, { cursor, relist, onAuthError, onDeleted }) {
    Object.assign(this, { live, id, cursor: cursor(), relist, onAuthError, onDeleted });
    this.history = new Map(); // logical job -> its submissions, once asked for
    this.head = h("div", { class: "run-head" });
    this.jobsBody = h("tbody");
    this.order = h("ol", { class: "order" });
    this.notice = h("div", { class: "notices" });
    this.actions = actionBar(() => (this.run ? [this.run] : []),
      (action, results) => this.acted(action, results), (error) => this.failed(error));
    this.spec = h("pre", { class: "spec" }, "Loading…");
    const details = h("details", { class: "spec-box", ontoggle: () => details.open && this.loadSpec() },
      h("summary", {}, "Spec"), this.spec);
    this.root = h("section", { class: "run" },
      h("a", { href: "#/", class: "back" }, "← All runs"),
      this.head, h("div", { class: "toolbar" }, this.actions.el), this.notice,
      h("h2", {}, "Jobs"),
      h("table", { class: "grid" }, h("thead", {}, h("tr", {},
        ["Job", "Replica", "Try", "Status", "Runner", "Exit", "Started", "Duration", "Message", ""].map((t) => h("th", {}, t)))),
      this.jobsBody),
      h("h2", {}, "DAG"), h("p", { class: "muted" }, "Jobs in dependency order, each with its replicas' status."),
      this.order, details);
  }

  async load() {
    const data = await gql("Run", { id: this.id });
    if (!data.run) {
      this.root.replaceChildren(h("a", { href: "#/", class: "back" }, "← All runs"),
        h("p", { class: "notice warn" }, `Run ${this.id} does not exist, was deleted, or is not visible to you.`));
      return;
    }
    this.run = data.run;
    this.jobs = data.run.jobs;
    this.unsubscribe = this.live.subscribe("RunEvents", () => ({ runIds: [this.id], after: this.cursor }),
      (d) => this.apply(d.runEvents), (error) => this.liveError(error));
    this.render();
  }

  liveError(error) {
    if (error.code === "UNAUTHENTICATED") return this.onAuthError(error);
    this.unsubscribe?.();
    if (error.code === "CURSOR_EXPIRED") {
      // Only a list carries a fresh cursor: list again, then read this run again.
      return this.relist().then((cursor) => { this.cursor = cursor; return this.load(); }).catch((e) => this.failed(e));
    }
    setTimeout(() => this.load().catch((e) => this.failed(e)), 1000);
  }

  apply(event) {
    this.cursor = event.cursor;
    if (event.run.id !== this.id) return;
    this.run = { ...this.run, ...event.run };
    const job = event.job;
    if (job) {
      const i = this.jobs.findIndex((j) => key(j) === key(job));
      if (i < 0) this.jobs.push(job);
      else if (job.submissionNum >= this.jobs[i].submissionNum) this.jobs[i] = { ...this.jobs[i], ...job };
      this.history.delete(key(job));
    }
    if (event.kind === "RUN_DELETED") this.notice.replaceChildren(h("div", { class: "notice warn" }, "This run was deleted."));
    this.render();
  }

  acted(action, results) {
    const [result] = results;
    if (result.run) this.run = { ...this.run, ...result.run };
    this.notice.replaceChildren(report(action, results));
    if (action.op === "DeleteRuns" && !result.error) this.onDeleted();
    else this.render();
  }

  failed(error) {
    if (error.code === "UNAUTHENTICATED") return this.onAuthError(error);
    this.notice.replaceChildren(h("div", { class: "notice error", role: "alert" }, error.message));
  }

  async loadSpec() {
    if (this.specLoaded) return;
    this.specLoaded = true;
    try {
      const data = await gql("RunSpec", { id: this.id });
      this.spec.textContent = JSON.stringify(data.run?.spec ?? null, null, 2);
    } catch (error) {
      this.specLoaded = false;
      this.spec.textContent = error.message;
    }
  }

  async toggleHistory(job) {
    const k = key(job);
    if (this.history.has(k)) this.history.delete(k);
    else {
      this.history.set(k, null);
      this.render();
      try {
        this.history.set(k, (await gql("JobHistory", { id: job.id })).job?.submissions ?? []);
      } catch (error) {
        this.history.delete(k);
        this.failed(error);
      }
    }
    this.render();
  }

  render() {
    const run = this.run;
    this.head.replaceChildren(
      h("h1", {}, run.name, " ", badge(run.status)),
      h("p", { class: "message" }, run.statusMessage),
      h("dl", { class: "facts" },
        fact("Project", run.project.name), fact("User", run.user.name),
        fact("Submitted", when(run.submittedAt)), fact("Finished", run.finishedAt ? when(run.finishedAt) : "—"),
        fact("Duration", duration(run.submittedAt, run.finishedAt)),
        fact("Attempt", String(run.attempt)), fact("Priority", String(run.priority)),
        run.terminationReason ? fact("Reason", run.terminationReason) : null));
    this.actions.refresh();
    const jobs = [...this.jobs].sort(byOrder);
    this.jobsBody.replaceChildren(...jobs.flatMap((job) => this.jobRows(job)));
    this.order.replaceChildren(...dagOrder(jobs).map((replicas) =>
      h("li", {}, h("b", {}, replicas[0].name), replicas.length > 1 ? ` ×${replicas.length}` : "",
        replicas[0].dependsOn?.length ? h("span", { class: "muted" }, ` after ${replicas[0].dependsOn.join(", ")}`) : "",
        " ", replicas.map((j) => badge(j.status)))));
  }

  jobRows(job) {
    const k = key(job);
    const shown = this.history.get(k);
    const rows = [h("tr", { dataset: { jobId: job.id } }, jobCells(job),
      h("td", {}, job.submissionNum > 0
        ? h("button", { type: "button", class: "link", onclick: () => this.toggleHistory(job) },
          this.history.has(k) ? "hide tries" : `${job.submissionNum + 1} tries`)
        : null))];
    if (shown === null) rows.push(h("tr", { class: "history" }, h("td", { colspan: 10 }, "Loading…")));
    else if (shown) rows.push(...shown.map((s) => h("tr", { class: "history", dataset: { submission: s.id } }, jobCells(s), h("td"))));
    return rows;
  }

  destroy() {
    this.unsubscribe?.();
  }
}

/** Logical jobs (each a list of its replicas) in dependency order, ties in job order. */
function dagOrder(jobs) {
  const logical = new Map();
  for (const job of jobs) logical.set(job.name, [...(logical.get(job.name) ?? []), job]);
  const done = new Set();
  const order = [];
  while (order.length < logical.size) {
    const ready = [...logical.values()].find((r) => !done.has(r[0].name) &&
      (r[0].dependsOn ?? []).every((name) => done.has(name) || !logical.has(name)));
    const next = ready ?? [...logical.values()].find((r) => !done.has(r[0].name)); // never a cycle; be safe
    done.add(next[0].name);
    order.push(next);
  }
  return order;
}

function fact(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

function jobCells(job) {
  const message = [job.terminationReason, job.terminationMessage].filter(Boolean).join(": ");
  return [
    h("td", { class: "name" }, job.name), h("td", { class: "num" }, String(job.replicaNum)),
    h("td", { class: "num" }, `#${job.submissionNum + 1}`), h("td", {}, badge(job.status)),
    h("td", {}, job.runnerName ?? ""), h("td", { class: "num" }, job.exitStatus ?? ""),
    h("td", {}, when(job.startedAt)), h("td", { class: "num" }, job.startedAt ? duration(job.startedAt, job.finishedAt) : ""),
    h("td", { class: "message" }, message),
  ];
}
