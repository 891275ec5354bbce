// Finding a session's items: filter by id substring, index, status and worker, sort by the
// columns people sort by, paged on the server (GET sessions/NAME/backfill/items). The filter lives
// in the page's URL (?session=S&q=…&index=…&status=…&worker=…&sort=…&desc=1&at=50), so a view
// can be shared and the back button goes back to the previous filter.
"use strict";

import { h } from "./core.js";

const SORTS = [
  ["created", "creation order"],
  ["id", "item id"],
  ["progress", "progress"],
  ["heartbeat", "heartbeat age"],
  ["failures", "failures"],
];
const STATUSES = [
  ["", "any status"],
  ["pending", "pending (incl. lapsed)"],
  ["assigned", "leased (live)"],
  ["completed", "completed"],
  ["failed", "failed"],
];

export function readFilter(params) {
  const at = parseInt(params.get("at"), 10);
  const sort = params.get("sort");
  return {
    q: params.get("q") || "",
    index: params.get("index") || "",
    status: params.get("status") || "",
    worker: params.get("worker") || "",
    sort: SORTS.some(([k]) => k === sort) ? sort : "created",
    desc: params.get("desc") === "1",
    offset: Number.isFinite(at) && at > 0 ? at : 0,
  };
}

export function filterActive(f) {
  return Boolean(f.q || f.index || f.status || f.worker || f.sort !== "created" || f.desc);
}

// The page's own URL for a filter (what a person shares).
export function writeFilter(f) {
  const params = new URLSearchParams(window.location.search);
  for (const key of ["q", "index", "status", "worker", "sort", "desc", "at"]) params.delete(key);
  if (f.q) params.set("q", f.q);
  if (f.index) params.set("index", f.index);
  if (f.status) params.set("status", f.status);
  if (f.worker) params.set("worker", f.worker);
  if (f.sort !== "created") params.set("sort", f.sort);
  if (f.desc) params.set("desc", "1");
  if (f.offset) params.set("at", String(f.offset));
  const url = `${window.location.pathname}?${params}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.pushState(null, "", url);
}

// The REST query for a filter.
export function filterQuery(f, limit) {
  const q = new URLSearchParams({ sort: f.sort, limit: String(limit) });
  if (f.desc) q.set("descending", "true");
  if (f.q) q.set("id_contains", f.q);
  if (f.index) q.set("index_name", f.index);
  if (f.status) q.set("status", f.status);
  if (f.worker) q.set("worker_id", f.worker);
  if (f.offset) q.set("after", String(f.offset));
  return q;
}

function field(label, control) {
  control.id = `find-${control.name}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
}

function select(name, options, value) {
  return h(
    "select",
    { name, "data-key": `find:${name}` },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

// The form is built once per view and kept across refreshes (what someone is typing stays).
export function findForm(name, ctx) {
  const f = ctx.filter;
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": `Find items of session ${name}` },
    field("Id contains", h("input", { name: "q", type: "search", value: f.q, spellcheck: "false", "data-key": "find:q" })),
    field("Index", h("input", { name: "index", type: "text", value: f.index, spellcheck: "false", "data-key": "find:index" })),
    field("Status", select("status", STATUSES, f.status)),
    field("Worker", h("input", { name: "worker", type: "text", value: f.worker, spellcheck: "false", "data-key": "find:worker" })),
    field("Sort by", select("sort", SORTS, f.sort)),
    field("Order", select("desc", [["0", "ascending"], ["1", "descending"]], f.desc ? "1" : "0")),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", "data-key": "find:submit" }, "Find"),
      h("button", { type: "button", "data-key": "find:clear", onclick: () => clear() }, "Clear"),
    ),
  );
  function clear() {
    form.reset();
    for (const input of form.querySelectorAll("input")) input.value = "";
    form.elements.status.value = "";
    form.elements.sort.value = "created";
    form.elements.desc.value = "0";
    ctx.setFilter(readFilter(new URLSearchParams()));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const e = form.elements;
    ctx.setFilter({
      q: e.q.value.trim(),
      index: e.index.value.trim(),
      status: e.status.value,
      worker: e.worker.value.trim(),
      sort: e.sort.value,
      desc: e.desc.value === "1",
      offset: 0,
    });
  });
  return h(
    "section",
    { class: "block find", "aria-label": `Find items of session ${name}` },
    h("h3", {}, "Find items"),
    h("p", { class: "note" }, "Filter and sort every item of the session; the filter is in the page's address, to share."),
    form,
    h("div", { class: "found-results", "aria-live": "polite" }),
  );
}
