// The runs page: list, then watch. One Runs request reads the page and its eventCursor;
// runEvents(after:) then brings every later change, applied to the rows shown. A run
// submitted elsewhere appears at the top of the first page; CURSOR_EXPIRED lists again.

import { gql } from "./api.js";
import { actionBar, report } from "./actions.js";
import { badge, countsBar, duration, FINAL, h, when } from "./dom.js";

const PAGE = 20;
const STATUSES = ["PENDING", "SUBMITTED", "RUNNING", "TERMINATING", "TERMINATED", "FAILED", "DONE"];

export class RunsView {
  constructor(live, { onAuthError, onError }) {
    this.live = live;
    this.onAuthError = onAuthError;
    this.onError = onError;
    this.filters = { project: "", status: "", search: "" };
    this.paging = {};
    this.rows = [];
    this.selected = new Set();
    this.cursor = null;
    this.seq = 0;
    this.body = h("tbody");
    this.pager = h("div", { class: "pager" });
    this.notice = h("div", { class: "notices" });
    this.projectSelect = h("select", { "aria-label": "Project", onchange: () => this.refilter() },
      h("option", { value: "" }, "All projects"));
    this.actions = actionBar(() => this.rows.filter((r) => this.selected.has(r.id)),
      (action, results) => this.acted(action, results), (error) => this.failed(error));
    this.root = this.build();
    this.ticker = setInterval(() => this.rows.some((r) => !FINAL.has(r.status)) && this.render(), 5000);
  }

  build() {
    const status = h("select", { "aria-label": "Status", onchange: (e) => this.refilter({ status: e.target.value }) },
      h("option", { value: "" }, "Any status"), h("option", { value: "active" }, "Active"),
      STATUSES.map((s) => h("option", { value: s }, s.toLowerCase())));
    let debounce;
    const search = h("input", { type: "search", placeholder: "Search names", "aria-label": "Search names",
      oninput: (e) => { clearTimeout(debounce); debounce = setTimeout(() => this.refilter({ search: e.target.value.trim() }), 250); } });
    this.all = h("input", { type: "checkbox", "aria-label": "Select all", onchange: (e) => {
      this.selected = new Set(e.target.checked ? this.rows.map((r) => r.id) : []);
      this.render();
    } });
    return h("section", { class: "runs" },
      h("div", { class: "toolbar" }, this.projectSelect, status, search, h("span", { class: "grow" }), this.actions.el),
      this.notice,
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", { class: "check" }, this.all),
          ["Name", "Status", "Message", "Submitted", "Duration", "Jobs", "User"].map((t) => h("th", {}, t)))),
        this.body),
      this.pager);
  }

  refilter(change = {}) {
    Object.assign(this.filters, { project: this.projectSelect.value }, change);
    this.paging = {};
    this.selected.clear();
    this.load().catch((e) => this.failed(e));
  }

  /** Read one page (the first load also reads `me` and the projects) and watch from it. */
  async load({ withProjects = false } = {}) {
    const seq = ++this.seq;
    const { project, status, search } = this.filters;
    const filter = {};
    if (status === "active") filter.onlyActive = true;
    else if (status) filter.statuses = [status];
    if (search) filter.nameContains = search;
    const page = this.paging.before ? { last: PAGE, before: this.paging.before } : { first: PAGE, after: this.paging.after ?? null };
    const data = await gql("Runs", { project: project || null, filter, withProjects, ...page });
    if (seq !== this.seq) return; // a newer load is under way
    if (withProjects) {
      this.me = data.me.name;
      this.projectSelect.append(...data.projects.edges.map((e) => h("option", { value: e.node.name }, e.node.name)));
    }
    this.rows = data.runs.edges.map((e) => e.node);
    this.pageInfo = data.runs.pageInfo;
    this.cursor = data.runs.eventCursor;
    this.watch();
    this.render();
  }

  watch() {
    this.unsubscribe?.();
    this.unsubscribe = this.live.subscribe("RunEvents",
      () => ({ project: this.filters.project || null, after: this.cursor }),
      (data) => this.apply(data.runEvents),
      (error) => this.liveError(error));
  }

  liveError(error) {
    if (error.code === "UNAUTHENTICATED") return this.onAuthError(error);
    if (error.code === "CURSOR_EXPIRED") return this.load().catch((e) => this.failed(e));
    // e.g. LIMIT_EXCEEDED (we read too slowly): resume from the last cursor, nothing is lost.
    setTimeout(() => this.watch(), 1000);
  }

  firstPage() {
    return !this.paging.after && !(this.paging.before && this.pageInfo?.hasPreviousPage);
  }

  matches(run) {
    const { project, status, search } = this.filters;
    return (!project || run.project.name === project) && (!search || run.name.includes(search)) &&
      (!status || (status === "active" ? !FINAL.has(run.status) : run.status === status));
  }

  apply(event) {
    this.cursor = event.cursor;
    const run = event.run;
    const i = this.rows.findIndex((r) => r.id === run.id);
    if (event.kind === "RUN_DELETED") {
      if (i >= 0) this.rows.splice(i, 1);
      this.selected.delete(run.id);
    } else if (i >= 0) {
      this.rows[i] = run;
    } else if (event.kind === "RUN_SUBMITTED" && this.firstPage() && this.matches(run)) {
      this.rows.unshift(run);
      if (this.rows.length > PAGE) this.rows.pop();
    } else {
      return;
    }
    this.scheduled ??= requestAnimationFrame(() => { this.scheduled = null; this.render(); });
  }

  acted(action, results) {
    for (const result of results) {
      const i = this.rows.findIndex((r) => r.id === result.runId);
      if (i < 0 || result.error) continue;
      if (result.run) this.rows[i] = result.run;
      else if (action.op === "DeleteRuns") this.rows.splice(i, 1);
    }
    this.notice.replaceChildren(report(action, results));
    this.render();
  }

  failed(error) {
    if (error.code === "UNAUTHENTICATED") return this.onAuthError(error);
    this.notice.replaceChildren(h("div", { class: "notice error", role: "alert" }, error.message));
  }

  render() {
    this.selected = new Set([...this.selected].filter((id) => this.rows.some((r) => r.id === id)));
    this.body.replaceChildren(...this.rows.map((run) => this.row(run)));
    if (!this.rows.length) this.body.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No runs.")));
    this.all.checked = this.rows.length > 0 && this.selected.size === this.rows.length;
    this.actions.refresh();
    const info = this.pageInfo ?? {};
    const newer = this.paging.before ? info.hasPreviousPage : Boolean(this.paging.after);
    const older = this.paging.before ? true : info.hasNextPage;
    this.pager.replaceChildren(
      h("button", { type: "button", disabled: !newer, onclick: () => this.go({ before: info.startCursor }) }, "← Newer"),
      h("button", { type: "button", disabled: !older, onclick: () => this.go({ after: info.endCursor }) }, "Older →"));
  }

  go(paging) {
    this.paging = paging;
    this.load().catch((e) => this.failed(e));
  }

  row(run) {
    const check = h("input", { type: "checkbox", "aria-label": `Select ${run.name}`, checked: this.selected.has(run.id),
      onchange: (e) => { e.target.checked ? this.selected.add(run.id) : this.selected.delete(run.id); this.render(); } });
    return h("tr", { dataset: { runId: run.id, name: run.name, status: run.status, project: run.project.name } },
      h("td", { class: "check" }, check),
      h("td", { class: "name" }, h("a", { href: `#/runs/${run.id}` }, run.name),
        this.filters.project ? null : h("small", {}, run.project.name)),
      h("td", {}, badge(run.status)),
      h("td", { class: "message" }, run.statusMessage),
      h("td", {}, when(run.submittedAt)),
      h("td", { class: "num" }, duration(run.submittedAt, run.finishedAt)),
      h("td", {}, countsBar(run.jobCounts)),
      h("td", {}, run.user.name));
  }

  destroy() {
    clearInterval(this.ticker);
    this.unsubscribe?.();
  }
}
