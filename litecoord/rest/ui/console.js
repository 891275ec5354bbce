// The operator's controls of one session: pause and resume hand-outs, failures grouped by their
// error with a retry per group and for every failed item, and the workers with the silent ones
// flagged. Every action asks first and says how many items it will touch.
"use strict";

import { api, duration, h, itemLink, num, rowHead, seg, table, td, when } from "./core.js";

function backfill(name, rest) {
  return `sessions/${seg(name)}/backfill/${rest}`;
}

// -- pause and resume -------------------------------------------------------------------------------

export function pauseControl(name, st, ctx) {
  const paused = Boolean(st.paused);
  const button = h(
    "button",
    {
      type: "button",
      class: paused ? "primary" : "pause",
      "data-key": `${name}:pause`,
      onclick: () =>
        ctx.confirmAction({
          title: paused ? `Resume session ${name}?` : `Pause session ${name}?`,
          text: paused
            ? `Workers get new items again: ${num(st.pending_work_items)} pending item(s) can be handed out.`
            : `No new item is handed out while it is paused (acquire answers "no work: paused"); ` +
              `${num(st.in_progress_work_items)} lease(s) in flight go on and complete. ` +
              `${num(st.pending_work_items)} pending item(s) wait.`,
          ok: paused ? "Resume" : "Pause",
          run: async () => {
            try {
              await api(backfill(name, paused ? "resume" : "pause"), { method: "POST", body: {} });
              ctx.setMessage(name, paused ? `Session ${name} was resumed.` : `Session ${name} was paused.`);
            } catch (err) {
              ctx.setMessage(name, `${paused ? "Resume" : "Pause"} failed: ${err.message}`, true);
            }
          },
        }),
    },
    paused ? "Resume hand-outs…" : "Pause hand-outs…",
  );
  return h(
    "div",
    { class: "controls" },
    paused
      ? h(
          "p",
          { class: "paused-note", role: "status", "data-field": "paused" },
          h("span", { class: "flag flag-paused" }, "PAUSED"),
          ` since ${when(st.paused_at)}: no item is handed out; leases in flight go on.`,
        )
      : null,
    button,
  );
}

// -- failures in groups -----------------------------------------------------------------------------

export function failureGroups(name, data, ctx) {
  if (!data) return null;
  const retryAll = data.failed
    ? h(
        "button",
        {
          type: "button",
          class: "retry",
          "data-key": `${name}:retry-all`,
          "data-fallback": `${name}:groups:heading`,
          onclick: () => confirmBulk(name, null, data.failed, ctx),
        },
        `Retry all ${num(data.failed)} failed…`,
      )
    : null;
  const rows = data.groups.map((g, i) =>
    h(
      "tr",
      { "data-group": String(i), class: "flagged" },
      rowHead("Error", { class: "error-text" }, h("code", {}, g.error_pattern)),
      td("Items", { class: "num", "data-field": "count" }, num(g.count)),
      td("Failed", { class: "num" }, num(g.failed)),
      td("Retrying", { class: "num" }, num(g.retrying)),
      td(
        "Examples",
        { class: "examples" },
        h(
          "span",
          {},
          g.example_work_item_ids.flatMap((id, j) => [j ? ", " : "", itemLink(name, id)]),
          g.count > g.example_work_item_ids.length ? ` and ${num(g.count - g.example_work_item_ids.length)} more` : "",
        ),
      ),
      td(
        "Action",
        {},
        g.failed
          ? h(
              "button",
              {
                type: "button",
                class: "retry",
                "data-key": `${name}:retry-group:${g.error_pattern}`,
                "data-fallback": `${name}:groups:heading`,
                "aria-label": `Retry the ${g.failed} failed items of the group ${g.error_pattern}`,
                onclick: () => confirmBulk(name, g, g.failed, ctx),
              },
              "Retry this group…",
            )
          : "retrying",
      ),
    ),
  );
  return h(
    "section",
    { class: "block", "aria-label": `Failures of session ${name} by error` },
    h(
      "h3",
      { tabindex: "-1", "data-key": `${name}:groups:heading` },
      `Failures by error (${num(data.failed)} failed, ${num(data.retrying)} retrying)`,
    ),
    h("p", { class: "note" }, "Errors that read the same once ids, numbers and quoted values are masked form one group."),
    retryAll ? h("p", {}, retryAll) : null,
    table(
      "groups",
      `Failed and retrying items of session ${name}, grouped by error`,
      ["Error", ["Items", "num"], ["Failed", "num"], ["Retrying", "num"], "Examples", "Action"],
      rows,
      "No failures.",
    ),
  );
}

function confirmBulk(name, group, count, ctx) {
  const what = group ? `the ${num(count)} failed item(s) of the group “${group.error_pattern}”` : `all ${num(count)} failed item(s)`;
  ctx.confirmAction({
    title: group ? "Retry this group?" : "Retry every failed item?",
    text: `Return ${what} of session ${name} to pending, their failure counts cleared? ${num(count)} item(s) will be touched; workers pick them up again.`,
    ok: `Retry ${num(count)}`,
    run: async () => {
      try {
        const body = group ? { error_pattern: group.error_pattern } : {};
        const done = await api(backfill(name, "failures/retry"), { method: "POST", body });
        ctx.setMessage(name, `${num(done.retried)} item(s) were returned to pending.`);
      } catch (err) {
        ctx.setMessage(name, `Retry failed: ${err.message}`, true);
      }
    },
  });
}

// -- workers ----------------------------------------------------------------------------------------

export function workersTable(name, data, open, ctx) {
  const rows = data
    ? data.workers.map((w) =>
        h(
          "tr",
          { "data-worker": w.worker_id, class: w.silent || (w.current_work_item_id && !w.lease_live) ? "flagged" : null },
          td(
            "Flags",
            { class: "flags" },
            w.silent
              ? h("span", { class: "flag flag-silent", title: "no heartbeat for longer than a third of its lease" }, "SILENT")
              : w.current_work_item_id && !w.lease_live
                ? h("span", { class: "flag flag-lapsed", title: "its lease expired" }, "LAPSED")
                : w.current_work_item_id
                  ? h("span", { class: "flag ok" }, "working")
                  : h("span", { class: "flag idle" }, "idle"),
          ),
          rowHead("Worker", { class: "id" }, w.worker_id),
          td("Holds", { class: "id" }, w.current_work_item_id ? itemLink(name, w.current_work_item_id) : "–"),
          td("Last heartbeat", {}, when(w.last_heartbeat)),
          td("Completed", { class: "num" }, num(w.completed)),
          td("Failed", { class: w.failed ? "num bad" : "num" }, num(w.failed)),
          td("Lapsed", { class: "num" }, num(w.lapsed)),
          td("Rate", { class: "num" }, w.documents_per_second === null ? "?" : `${num(Math.round(w.documents_per_second))} docs/s`),
          td("Items/h", { class: "num" }, w.items_per_hour === null ? "?" : num(Math.round(w.items_per_hour))),
          td("Busy", { class: "num" }, duration(w.busy_seconds)),
        ),
      )
    : [];
  const silent = data ? data.workers.filter((w) => w.silent).length : null;
  return h(
    "details",
    {
      class: "block workers",
      open,
      ontoggle: (event) => {
        ctx.workersOpen[name] = event.target.open;
        if (event.target.open) ctx.refresh();
      },
    },
    h(
      "summary",
      { "data-key": `${name}:workers` },
      h("h3", {}, data ? `Workers (${num(data.workers.length)}${silent ? `, ${num(silent)} silent` : ""})` : "Workers"),
    ),
    data
      ? table(
          "workers",
          `Workers seen in session ${name}`,
          ["Flags", "Worker", "Holds", "Last heartbeat", ["Completed", "num"], ["Failed", "num"], ["Lapsed", "num"], ["Rate", "num"], ["Items/h", "num"], ["Busy", "num"]],
          rows,
          "No worker has leased an item yet.",
        )
      : h("p", { class: "note" }, "Loading…"),
  );
}
