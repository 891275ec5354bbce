// One item (?session=S&item=ID): every field, its range, its parent and successors, and the
// history of its attempts with each error in full (GET …/work-items/ID and …/ID/history).
"use strict";

import { $, HttpFailure, api, bytes, duration, flagBadges, h, itemLink, keepFocus, num, seg, sessionHref, table, td, when } from "./core.js";

function row(label, value, field) {
  return h("div", { class: "kv" }, h("dt", {}, label), h("dd", { "data-field": field }, value));
}

function at(value) {
  return value ? when(value) : "–";
}

function orDash(value) {
  return value === null || value === undefined || value === "" ? "–" : value;
}

function fields(item, name) {
  const docs = `${num(item.documents_processed)} / ${num(item.document_count)}`;
  const size = `${bytes(item.bytes_processed)} / ${bytes(item.total_size_bytes)}`;
  const ranged = (item.range_start !== undefined && item.range_start !== null) || (item.range_end !== undefined && item.range_end !== null);
  const range = ranged ? `${orDash(item.range_start)} … ${orDash(item.range_end)}` : "whole shard";
  const successors = item.successor_ids && item.successor_ids.length
    ? item.successor_ids.flatMap((id, i) => [i ? ", " : "", itemLink(name, id)])
    : "–";
  return h(
    "dl",
    { class: "fields" },
    row("Status", item.status, "status"),
    item.flags ? row("Flags", flagBadges(item.flags), "flags") : null,
    row("Index", orDash(item.index_name), "index_name"),
    row("Shard", orDash(item.shard_number), "shard_number"),
    row("Range", range, "range"),
    row("Parent", item.parent_id ? itemLink(name, item.parent_id) : "–", "parent_id"),
    row("Successors", successors, "successor_ids"),
    item.split_requested_at ? row("Split requested", at(item.split_requested_at), "split_requested_at") : null,
    row("Documents", docs, "documents"),
    row("Bytes", size, "bytes"),
    row("Worker", orDash(item.worker_id), "worker_id"),
    row("Lease epoch", num(item.lease_epoch), "lease_epoch"),
    row("Lease", item.lease_duration_seconds ? duration(item.lease_duration_seconds) : "–", "lease_duration"),
    row("Lease expires", at(item.lease_expiry), "lease_expiry"),
    row(
      "Last heartbeat",
      item.heartbeat_age_seconds !== undefined && item.heartbeat_age_seconds !== null && item.worker_id
        ? `${when(item.last_heartbeat || item.leased_at)} (${duration(item.heartbeat_age_seconds)} ago)`
        : at(item.last_heartbeat),
      "last_heartbeat",
    ),
    row("Progress last moved", at(item.progress_changed_at), "progress_changed_at"),
    row("Failures", num(item.failure_count), "failure_count"),
    row("Next attempt", at(item.next_attempt_at), "next_attempt_at"),
    row("Created", at(item.created_at), "created_at"),
    row("Started", at(item.started_at), "started_at"),
    row("Completed", at(item.completed_at), "completed_at"),
  );
}

function historyTable(history, item) {
  const lapsed = item.flags && item.flags.includes("lapsed");
  const rows = history.attempts.map((a) =>
    h(
      "tr",
      { "data-attempt": a.lease_epoch, class: a.outcome === "failed" || a.outcome === "lapsed" ? "flagged" : null },
      td("Attempt", { class: "num" }, num(a.lease_epoch)),
      td("Worker", {}, orDash(a.worker_id)),
      td("Leased", {}, when(a.leased_at)),
      td("Ended", {}, a.ended_at ? when(a.ended_at) : "–"),
      td(
        "Outcome",
        {},
        h("span", { class: `outcome outcome-${a.outcome}`, "data-field": "outcome" }, a.outcome),
        a.outcome === "running" && lapsed ? h("span", { class: "small" }, `its lease expired ${at(item.lease_expiry)}`) : null,
      ),
      td("Documents", { class: "num" }, num(a.documents_processed)),
      td("Bytes", { class: "num" }, bytes(a.bytes_processed)),
      td("Error", { class: "error-text" }, a.error ? h("pre", { class: "error-full" }, a.error) : "–"),
    ),
  );
  return table(
    "history",
    `Attempts of item ${history.work_item_id}, oldest first`,
    [["Attempt", "num"], "Worker", "Leased", "Ended", "Outcome", ["Documents", "num"], ["Bytes", "num"], "Error"],
    rows,
    "Not leased yet.",
  );
}

export async function itemView(name, id, ctx, state) {
  const base = `sessions/${seg(name)}/backfill/work-items/${seg(id)}`;
  let item = null;
  try {
    // The item with its flags and ages at the server's time: found by its id among the items whose
    // id contains it (GET …/ID alone has no flags); an item not among them is asked for by name.
    const q = new URLSearchParams({ id_contains: id, sort: "id", limit: "1000" });
    const found = await api(`sessions/${seg(name)}/backfill/items?${q}`);
    item = found.items.find((x) => x.work_item_id === id) || null;
    if (!item) item = await api(base);
  } catch (err) {
    if (err instanceof HttpFailure && (err.code === "work_item_not_found" || err.code === "session_not_found")) {
      draw(state, `missing:${name}:${id}`, () => missing(name, id, err));
      return;
    }
    throw err;
  }
  let history = null;
  let historyNote = null;
  try {
    history = await api(`${base}/history`);
  } catch (err) {
    if (!(err instanceof HttpFailure) || err.code !== "not_found") throw err;
    historyNote = "This server does not record the attempts of items.";
  }
  const message = ctx.messageOf(name);
  const key = JSON.stringify([item, history]) + (message ? message.text : "");
  draw(state, key, () => [
    h("p", { class: "back" }, h("a", { href: sessionHref(name) }, `← Session ${name}`)),
    h("h2", { id: "item-title" }, "Item ", h("span", { class: "id" }, id)),
    message ? h("p", { class: message.error ? "error" : "message", role: "status" }, message.text) : null,
    item.status === "failed"
      ? h(
          "p",
          {},
          h(
            "button",
            {
              type: "button",
              class: "retry",
              "data-key": `item:retry:${id}`,
              "data-fallback": "item:history",
              "aria-label": `Retry ${id}`,
              onclick: () => ctx.confirmRetry(name, id),
            },
            "Retry…",
          ),
        )
      : null,
    fields(item, name),
    item.last_error
      ? h("div", { class: "block" }, h("h3", {}, "Last error"), h("pre", { class: "error-full", "data-field": "last_error" }, item.last_error))
      : null,
    h(
      "section",
      { class: "block", "aria-label": `Attempts of ${id}` },
      h("h3", { tabindex: "-1", "data-key": "item:history" }, `Attempts${history ? ` (${num(history.attempts.length)})` : ""}`),
      historyNote ? h("p", { class: "note" }, historyNote) : historyTable(history, item),
    ),
  ]);
  document.title = `${id} (${item.status}) · ${name} · litecoord`;
}

function missing(name, id, err) {
  return [
    h("p", { class: "back" }, h("a", { href: err.code === "session_not_found" ? "./" : sessionHref(name) }, "← Back")),
    h("h2", {}, err.code === "session_not_found" ? "No such session" : "No such item"),
    h(
      "p",
      { class: "error", role: "alert", "data-field": "missing" },
      err.code === "session_not_found"
        ? `There is no session named “${name}” in this server's database.`
        : `Session ${name} has no item “${id}”.`,
    ),
  ];
}

function draw(state, key, build) {
  const container = $("views");
  if (state.rendered["#item"] === key) return;
  state.rendered["#item"] = key;
  container.classList.add("single");
  const section = h("section", { class: "panel item-view", "aria-labelledby": "item-title" }, ...build());
  keepFocus(() => container.replaceChildren(section));
}
