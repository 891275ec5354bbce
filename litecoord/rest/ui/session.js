// A session's live view: its figures, throughput chart, indexes, leases, failed items.
// Drawn from one overview (GET sessions/NAME/backfill/overview) per refresh: every table in a
// frame comes from the same answer, so they agree with each other.
"use strict";

import {
  NF1,
  bar,
  bytes,
  duration,
  flagBadges,
  h,
  itemLink,
  num,
  pct,
  rowHead,
  s,
  table,
  td,
  when,
} from "./core.js";

// -- ETA and run times ------------------------------------------------------------------------

const ETA_REASONS = {
  paused: "the session is paused: nothing is handed out",
  no_live_lease: "nobody holds a live lease: no one is working",
  only_stalled_or_silent: "every live lease is stalled or silent: what remains is not moving",
  no_rate_yet: "no throughput measured yet",
};

// What the page says about the end of the run: the server's ETA, or why there is none.
export function etaText(st) {
  if (st.finished_at) return { text: "done", detail: `finished ${when(st.finished_at)}` };
  if (st.paused) return { text: "paused", detail: `paused since ${when(st.paused_at)}: nothing is handed out` };
  if (st.eta_seconds === null || st.eta_seconds === undefined) {
    return { text: "unknown", detail: ETA_REASONS[st.eta_reason] || st.eta_reason || ETA_REASONS.no_rate_yet };
  }
  const detail = [];
  if (st.estimated_completion) detail.push(`at ${when(st.estimated_completion)}`);
  if (st.eta_bound_by) detail.push(`set by its slowest lease, ${st.eta_bound_by}`);
  return { text: duration(st.eta_seconds), detail: detail.join("; ") };
}

// The mean rate over the run so far, and the recent rate the server measures the ETA with.
function rates(st) {
  const mean =
    st.mean_documents_per_second !== undefined && st.mean_documents_per_second !== null
      ? st.mean_documents_per_second
      : st.elapsed_seconds
        ? st.total_documents_processed / st.elapsed_seconds
        : null;
  const recent = st.finished_at
    ? null
    : st.recent_documents_per_second !== undefined
      ? st.recent_documents_per_second
      : st.documents_per_second;
  const recentBytes = st.recent_bytes_per_second !== undefined ? st.recent_bytes_per_second : st.bytes_per_second;
  return { mean, recent, recentBytes, window: st.rate_window_seconds || 600 };
}

function rateText(value, unit) {
  return value === null || value === undefined ? "?" : `${num(Math.round(value))} ${unit}`;
}

// -- the chart ------------------------------------------------------------------------------------

const MAX_BARS = 120;

function niceCeil(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

// Throughput over the run: documents per second between kept samples. At most MAX_BARS bars: a
// sample is kept when it is at least span/MAX_BARS after the last one kept, and each bar is the
// exact mean over its interval. Once the run is finished the chart ends where the run ended.
export function chart(data) {
  const figure = h("figure", { class: "chart" });
  const st = data.status;
  const end = st.finished_at ? Date.parse(st.finished_at) : Date.parse(data.as_of);
  const samples = data.samples
    .map((x) => ({ t: Date.parse(x.sampled_at), docs: x.documents_processed }))
    .filter((x) => x.t <= end);
  // Before the oldest sample held, one bar from the run's start (nothing was processed then):
  // the mean over that span, so the chart covers the whole run.
  const started = st.started_at ? Date.parse(st.started_at) : null;
  const startBar = started !== null && samples.length && started < samples[0].t;
  if (startBar) samples.unshift({ t: started, docs: 0 });
  const last = samples[samples.length - 1];
  if (!st.finished_at && last && end > last.t && st.total_documents_processed !== last.docs) {
    samples.push({ t: end, docs: st.total_documents_processed }); // the bar since the latest sample
  }
  const caption = h(
    "figcaption",
    {},
    `Throughput over the run, documents per second${st.finished_at ? ` (the run ended ${when(st.finished_at)})` : ""}`,
  );
  if (samples.length < 2) {
    figure.append(caption, h("p", { class: "note" }, "No progress recorded yet."));
    return figure;
  }
  const first = samples[0].t;
  const span = Math.max(300_000, samples[samples.length - 1].t - first);
  const kept = [samples[0]];
  for (let i = 1; i < samples.length; i += 1) {
    const isLast = i === samples.length - 1;
    if (isLast || samples[i].t - kept[kept.length - 1].t >= span / MAX_BARS) kept.push(samples[i]);
  }
  const points = [];
  for (let i = 1; i < kept.length; i += 1) {
    const dt = (kept[i].t - kept[i - 1].t) / 1000;
    if (dt <= 0) continue;
    points.push({ from: kept[i - 1].t, to: kept[i].t, rate: Math.max(0, kept[i].docs - kept[i - 1].docs) / dt });
  }
  if (!points.length) {
    figure.append(caption, h("p", { class: "note" }, "No progress recorded yet."));
    return figure;
  }
  const W = 600;
  const H = 120;
  const peak = Math.max(...points.map((p) => p.rate));
  const top = niceCeil(peak);
  const right = points[points.length - 1].to;
  const left = right - span;
  const xOf = (ms) => ((ms - left) / span) * W;
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Throughput chart: ${points.length} intervals, peak ${num(Math.round(peak))} docs/s, latest ${num(
      Math.round(points[points.length - 1].rate),
    )} docs/s`,
    preserveAspectRatio: "none",
  });
  for (const y of [0.5, 1]) svg.append(s("line", { x1: 0, x2: W, y1: H - y * H + 0.5, y2: H - y * H + 0.5, class: "grid" }));
  points.forEach((p) => {
    const height = p.rate > 0 ? Math.max(1, (p.rate / top) * H) : 0;
    const x = xOf(p.from);
    const rect = s("rect", {
      x: x.toFixed(1),
      y: (H - height).toFixed(1),
      width: Math.max(1, xOf(p.to) - x - 0.5).toFixed(1),
      height: height.toFixed(1),
      class: "col",
    });
    rect.append(s("title", {}, document.createTextNode(`${when(new Date(p.to))}: ${num(Math.round(p.rate))} docs/s`)));
    svg.append(rect);
  });
  // Labels are HTML beside the drawing: the SVG stretches to the width, text would stretch with it.
  const yAxis = h(
    "div",
    { class: "y-axis", "aria-hidden": "true" },
    h("span", {}, `${num(top)}`),
    h("span", {}, `${num(top / 2)}`),
    h("span", {}, "0 docs/s"),
  );
  const axis = h(
    "p",
    { class: "axis" },
    h("span", {}, when(new Date(left))),
    h(
      "span",
      {},
      `peak ${num(Math.round(peak))} docs/s · ${points.length} bar${points.length === 1 ? "" : "s"} of ${duration((right - first) / 1000 / points.length)}`,
    ),
    h("span", {}, when(new Date(right))),
  );
  figure.append(caption, h("div", { class: "plot" }, yAxis, svg), axis);
  return figure;
}

// -- figures --------------------------------------------------------------------------------------

function stateItem(label, value, field, alert) {
  return h(
    "div",
    { class: alert ? "state alert" : "state" },
    h("dt", {}, label),
    h("dd", { "data-field": field }, num(value)),
  );
}

export function alertCount(st, counts) {
  return (st.failed_work_items || 0) + (counts.lapsed || 0) + (counts.stalled || 0) + (counts.silent || 0);
}

export function summary(data) {
  const st = data.status;
  const counts = data.counts;
  const pending = st.pending_work_items - st.expired_lease_work_items;
  return h(
    "div",
    { class: "summary" },
    h(
      "div",
      { class: "big" },
      h("span", { class: "percent", "data-field": "percent_complete" }, `${NF1.format(st.percent_complete)}%`),
      h("span", { class: "label" }, "complete"),
    ),
    h(
      "dl",
      { class: "states" },
      stateItem("Total items", st.total_work_items, "total_work_items"),
      stateItem("Completed", st.completed_work_items, "completed_work_items"),
      stateItem("In progress", st.in_progress_work_items, "in_progress_work_items"),
      stateItem("Pending", pending, "pending_only"),
      stateItem("Retrying", st.retrying_work_items || 0, "retrying_work_items"),
      stateItem("Lapsed leases", st.expired_lease_work_items, "expired_lease_work_items", counts.lapsed > 0),
      stateItem("Failed", st.failed_work_items, "failed_work_items", st.failed_work_items > 0),
      stateItem("Stalled", counts.stalled, "stalled", counts.stalled > 0),
      stateItem("Silent", counts.silent, "silent", counts.silent > 0),
    ),
  );
}

export function totals(data) {
  const st = data.status;
  const eta = etaText(st);
  const r = rates(st);
  const lines = [
    h(
      "p",
      {},
      h("span", { class: "what" }, "Documents "),
      bar(pct(st.total_documents_processed, st.total_documents), "documents processed"),
      h("span", { class: "figure", "data-field": "documents" }, `${num(st.total_documents_processed)} / ${num(st.total_documents)}`),
    ),
    h(
      "p",
      {},
      h("span", { class: "what" }, "Bytes "),
      bar(pct(st.total_bytes_processed, st.total_size_bytes), "bytes processed"),
      h("span", { class: "figure", "data-field": "bytes" }, `${bytes(st.total_bytes_processed)} / ${bytes(st.total_size_bytes)}`),
    ),
    h(
      "p",
      { class: "rates" },
      st.finished_at ? "" : `Recent rate (last ${duration(r.window)}) ${rateText(r.recent, "docs/s")}`,
      st.finished_at ? "" : ` (${r.recentBytes === null || r.recentBytes === undefined ? "?" : bytes(Math.round(r.recentBytes))}/s) · `,
      `Mean rate over the run ${rateText(r.mean, "docs/s")} · ETA `,
      h("span", { "data-field": "eta" }, eta.text),
      eta.detail ? h("span", { "data-field": "eta_detail" }, ` (${eta.detail})`) : "",
      ` · figures as of ${when(data.as_of)}`,
    ),
  ];
  if (st.started_at) {
    lines.push(
      h(
        "p",
        { class: "rates", "data-field": "run_times" },
        `Started ${when(st.started_at)}`,
        st.finished_at
          ? ` · finished ${when(st.finished_at)} · took ${duration(st.took_seconds !== undefined && st.took_seconds !== null ? st.took_seconds : st.elapsed_seconds)}`
          : ` · running for ${duration(st.elapsed_seconds)}`,
      ),
    );
  }
  return h("div", { class: "totals" }, lines);
}

// -- tables ---------------------------------------------------------------------------------------

export function indexTable(data, name, ctx) {
  const rows = data.indexes.map((ix) =>
    h(
      "tr",
      { "data-index": ix.index_name === null ? "" : ix.index_name },
      rowHead("Index", {}, ix.index_name === null ? h("em", {}, "(no index)") : ix.index_name),
      td("Items done", { class: "num" }, `${num(ix.completed_work_items)} / ${num(ix.total_work_items)}`),
      td("In progress", { class: "num", "data-field": "in_progress" }, num(ix.assigned_work_items - ix.lapsed_work_items)),
      td("Failed", { class: "num" }, ix.failed_work_items ? h("strong", {}, num(ix.failed_work_items)) : "0"),
      td("Documents", {}, bar(pct(ix.documents_processed, ix.total_documents), `${ix.index_name || "no index"}: documents`)),
      td("Processed", { class: "num" }, `${num(ix.documents_processed)} / ${num(ix.total_documents)}`),
    ),
  );
  const notes = [];
  if (data.indexes_total > data.indexes.length) {
    notes.push(h("p", { class: "note" }, `Showing ${data.indexes.length} of ${num(data.indexes_total)} indexes.`));
  }
  if (data.indexes_as_of && data.indexes_as_of !== data.as_of) {
    notes.push(
      h(
        "p",
        { class: "note", "data-field": "indexes_as_of" },
        `Per-index figures as of ${when(data.indexes_as_of)}: at this size they are recomputed every few seconds.`,
      ),
    );
  }
  const open = name in ctx.indexesOpen ? ctx.indexesOpen[name] : data.indexes_total <= 20;
  return h(
    "details",
    {
      class: "block",
      open,
      ontoggle: (event) => {
        ctx.indexesOpen[name] = event.target.open;
      },
    },
    h("summary", { "data-key": `${name}:indexes` }, h("h3", {}, `Indexes (${num(data.indexes_total)})`)),
    table(
      "indexes",
      `Progress per index of session ${name}`,
      ["Index", ["Items done", "num"], ["In progress", "num"], ["Failed", "num"], "Documents", ["Processed", "num"]],
      rows,
      "No items.",
    ),
    notes,
  );
}

export function pager(label, key, page, pageNo, pageSize, go) {
  const pages = Math.max(1, Math.ceil(page.total / pageSize));
  if (pages === 1 && pageNo === 1) return null;
  return h(
    "nav",
    { class: "pager", "aria-label": `${label} pages` },
    h(
      "button",
      { type: "button", "data-key": `${key}:prev`, "data-fallback": `${key}:next`, disabled: pageNo === 1, onclick: () => go(-1) },
      "← Previous",
    ),
    h("span", {}, ` page ${pageNo} of ${pages} `),
    h(
      "button",
      { type: "button", "data-key": `${key}:next`, "data-fallback": `${key}:prev`, disabled: !page.next_cursor, onclick: () => go(1) },
      "Next →",
    ),
  );
}

function heartbeat(it) {
  return it.heartbeat_age_seconds === null || it.heartbeat_age_seconds === undefined ? "?" : `${duration(it.heartbeat_age_seconds)} ago`;
}

// The documents an item covers, where it came from and whether an idle worker asked its holder to
// split it (issue 18): shown under the id, so a split is visible while the run goes on.
function rangeNote(it) {
  if (it.range_start === undefined) return null;
  let text = `docs ${num(it.range_start)}–${it.range_end === null ? "end" : num(it.range_end)}`;
  if (it.parent_id) text += ` · split from ${it.parent_id}`;
  if (it.split_requested_at !== null && it.split_requested_at !== undefined) {
    text += ` · split asked at ${num(it.split_requested_at)}`;
  }
  return h("span", { class: "small range", "data-field": "range" }, text);
}

// The coverage audit of a session with nothing left to hand out (GET …/backfill/coverage): per shard,
// its extent, the documents no completed item covered (gaps), those covered twice (overlaps), items
// completed short, and shards it cannot judge.
export function coverageTable(report) {
  if (!report) return null;
  const spans = (list) => (list.length ? list.map(([a, b]) => `${num(a)}–${num(b)}`).join(", ") : "none");
  const rows = report.shards.map((s) =>
    h(
      "tr",
      { "data-shard": `${s.index_name}/${s.shard_number}`, class: s.verdict === "ok" ? null : "flagged" },
      rowHead("Shard", {}, s.index_name === null ? s.root_id || "?" : `${s.index_name} / ${s.shard_number}`),
      td("Verdict", { "data-field": "verdict" }, s.verdict === "ok" ? "ok" : s.verdict.replace("_", " ").toUpperCase()),
      td("Documents", { class: "num" }, s.extent ? `${num(s.extent[0])}–${num(s.extent[1])}` : "unknown"),
      td("Gaps", { "data-field": "gaps" }, spans(s.gaps)),
      td("Overlaps", {}, spans(s.overlaps)),
      td("Short items", {}, s.short.length ? s.short.join(", ") : "none"),
      td("Items", { class: "num" }, num(s.items)),
    ),
  );
  return h(
    "section",
    { class: "block", "aria-label": "Coverage audit" },
    h(
      "h3",
      {},
      `Coverage audit: ${report.ok ? "ok, every document of every shard was covered" : "NOT OK"} ` +
        `(${num(report.gap_count)} gaps, ${num(report.overlap_count)} overlaps, ${num(report.short_items)} short, ` +
        `${num(report.unverifiable_shards)} unverifiable)`,
    ),
    table("coverage", "Coverage of each shard", ["Shard", "Verdict", "Documents", "Gaps", "Overlaps", "Short items", "Items"], rows, "No shard."),
  );
}

export function leasedTable(data, name, ctx) {
  const page = data.leased;
  const rows = page.items.map((it) => {
    const expiry =
      it.lease_remaining_seconds === null
        ? "?"
        : it.lease_remaining_seconds > 0
          ? `in ${duration(it.lease_remaining_seconds)}`
          : `${duration(it.lease_remaining_seconds)} ago`;
    return h(
      "tr",
      { "data-item": it.work_item_id, class: it.flags.length ? "flagged" : null },
      td("Flags", { class: "flags" }, flagBadges(it.flags)),
      rowHead("Item", { class: "id" }, itemLink(name, it.work_item_id), " ", rangeNote(it)),
      td("Worker", {}, it.worker_id || "?"),
      td("Lease expires", { title: when(it.lease_expiry) }, expiry),
      td("Heartbeat", { class: "num" }, heartbeat(it)),
      td(
        "Documents",
        {},
        bar(pct(it.documents_processed, it.document_count), `${it.work_item_id}: documents`),
        h("span", { class: "small" }, `${num(it.documents_processed)} / ${num(it.document_count)}`),
      ),
      td("Bytes", {}, bar(pct(it.bytes_processed, it.total_size_bytes), `${it.work_item_id}: bytes`)),
    );
  });
  const c = data.counts;
  const stack = ctx.cursorsOf(name).leased;
  return h(
    "section",
    { class: "block", "aria-label": `Leased items of session ${name}` },
    h(
      "h3",
      {},
      `Leased items (${num(page.total)}: ${num(c.live)} live, ${num(c.lapsed)} lapsed, ${num(c.stalled)} stalled, ${num(c.silent)} silent)`,
    ),
    h(
      "p",
      { class: "note" },
      `Flags: LAPSED the lease expired; SILENT no heartbeat for over a third of the lease; STALLED heartbeats ` +
        `but no progress for ${duration(data.stall_after_seconds)}. Lapsed leases come first.`,
    ),
    table(
      "leased",
      `Leased items of session ${name}`,
      ["Flags", "Item", "Worker", "Lease expires", "Heartbeat", "Documents", "Bytes"],
      rows,
      "No item is leased.",
    ),
    pager("Leased items", `${name}:leased`, page, stack.length + 1, ctx.pageSize, (step) => {
      if (step < 0) stack.pop();
      else stack.push(page.next_cursor);
      ctx.refresh();
    }),
  );
}

export function failedTable(data, name, ctx) {
  const page = data.failed;
  const headingKey = `${name}:failed:heading`;
  const rows = page.items.map((it) =>
    h(
      "tr",
      { "data-item": it.work_item_id, class: "flagged" },
      td("Flags", { class: "flags" }, flagBadges(it.flags)),
      rowHead("Item", { class: "id" }, itemLink(name, it.work_item_id)),
      td("Failures", { class: "num" }, num(it.failure_count)),
      td("Last error", { class: "error-text" }, h("code", {}, it.last_error || "")),
      td(
        "Action",
        {},
        h(
          "button",
          {
            type: "button",
            class: "retry",
            "data-key": `${name}:retry:${it.work_item_id}`,
            "data-fallback": headingKey,
            "aria-label": `Retry ${it.work_item_id}`,
            onclick: () => ctx.confirmRetry(name, it.work_item_id),
          },
          "Retry…",
        ),
      ),
    ),
  );
  const stack = ctx.cursorsOf(name).failed;
  return h(
    "section",
    { class: "block", "aria-label": `Failed items of session ${name}` },
    h("h3", { tabindex: "-1", "data-key": headingKey }, `Failed items (${num(page.total)})`),
    table("failed", `Failed items of session ${name}`, ["Flags", "Item", "Failures", "Last error", "Action"], rows, "No failed items."),
    pager("Failed items", `${name}:failed`, page, stack.length + 1, ctx.pageSize, (step) => {
      if (step < 0) stack.pop();
      else stack.push(page.next_cursor);
      ctx.refresh();
    }),
  );
}

// One row of a found item (GET …/backfill/items): the columns people sort by.
export function foundTable(found, name, ctx) {
  const rows = found.items.map((it) =>
    h(
      "tr",
      { "data-item": it.work_item_id, class: it.flags.length ? "flagged" : null },
      td("Flags", { class: "flags" }, flagBadges(it.flags)),
      rowHead("Item", { class: "id" }, itemLink(name, it.work_item_id)),
      td("Index", {}, it.index_name === null ? h("em", {}, "(none)") : it.index_name),
      td("Status", { "data-field": "status" }, it.status),
      td("Worker", {}, it.worker_id || "–"),
      td(
        "Progress",
        {},
        bar(pct(it.documents_processed, it.document_count), `${it.work_item_id}: documents`),
        h("span", { class: "small" }, `${num(it.documents_processed)} / ${num(it.document_count)}`),
      ),
      td("Heartbeat", { class: "num" }, it.status === "assigned" || it.flags.includes("lapsed") ? heartbeat(it) : "–"),
      td("Failures", { class: "num" }, num(it.failure_count)),
    ),
  );
  return [
    h("p", { class: "note", "data-field": "found_total" }, `${num(found.total)} matching item${found.total === 1 ? "" : "s"}, as of ${when(found.as_of)}.`),
    table(
      "found",
      `Items of session ${name} matching the filter`,
      ["Flags", "Item", "Index", "Status", "Worker", "Progress", ["Heartbeat", "num"], ["Failures", "num"]],
      rows,
      "No item matches.",
    ),
    pager("Found items", `${name}:found`, found, Math.floor(ctx.filter.offset / ctx.pageSize) + 1, ctx.pageSize, (step) => {
      ctx.setFilter({ ...ctx.filter, offset: Math.max(0, ctx.filter.offset + step * ctx.pageSize) });
    }),
  ];
}
