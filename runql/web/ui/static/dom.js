// Small helpers: build elements, format times and durations, colour statuses.

/** h("td", {class: "x", onclick: f}, "text", child) -> an element; null children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value); // CSSOM: allowed by the CSP
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const FINAL = new Set(["TERMINATED", "FAILED", "DONE", "ABORTED"]);

export function badge(status) {
  return h("span", { class: `status s-${status.toLowerCase()}` }, status.toLowerCase());
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const seconds = (Date.now() - date) / 1000;
  const text =
    seconds < 60 ? "just now"
    : seconds < 3600 ? `${Math.floor(seconds / 60)} min ago`
    : seconds < 86400 ? `${Math.floor(seconds / 3600)} h ago`
    : date.toLocaleDateString(undefined, { month: "short", day: "numeric" }) +
      " " + date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return h("time", { datetime: iso, title: date.toLocaleString() }, text);
}

export function duration(from, to) {
  if (!from) return "";
  let s = Math.max(0, Math.round(((to ? new Date(to) : Date.now()) - new Date(from)) / 1000));
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (s >= size || parts.length) parts.push(`${Math.floor(s / size)}${unit}`);
    s %= size;
  }
  if (parts.length < 2) parts.push(`${s}s`);
  return parts.slice(0, 2).join(" ");
}

const BAR = ["done", "running", "terminating", "submitted", "blocked", "failed", "aborted", "terminated"];

/** Job counts as one thin stacked bar, the numbers in its tooltip. */
export function countsBar(counts) {
  const total = counts.total || 1;
  const title = BAR.filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`).join(", ");
  return h("span", { class: "jobs", title: `${counts.total} jobs: ${title}` },
    h("span", { class: "bar" }, BAR.filter((k) => counts[k]).map((k) =>
      h("i", { class: `j-${k}`, style: { width: `${(100 * counts[k]) / total}%` } }))),
    h("small", {}, `${counts.done}/${counts.total}`));
}
