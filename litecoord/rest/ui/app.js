// litecoord's status page: hand-written, no dependencies, no build step (ES modules, same origin).
//
// Each refresh asks for the session list with each session's status (GET sessions/summary) or,
// for one session (?session=NAME), its overview (GET sessions/NAME/backfill/overview): aggregates,
// flag counts and one page of leased and of failed items. Never every item, so a backfill of
// 100,000 items costs what one of 1,000 does. Reads carry If-None-Match: an unchanged one is a
// 304 without a body. A hidden tab stops asking until it is shown again. All ages and flags come
// from the server's clock (as_of), never from this browser's.
"use strict";

import { $, HttpFailure, NF1, TOKEN_KEY, api, auth, bar, focusKey, h, keepFocus, num, seg, sessionHref, td, rowHead, when } from "./core.js";
import { alertCount, chart, coverageTable, etaText, failedTable, foundTable, indexTable, leasedTable, summary, totals } from "./session.js";
import { findForm, filterActive, filterQuery, readFilter, writeFilter } from "./find.js";
import { itemView } from "./item.js";
import { failureGroups, pauseControl, workersTable } from "./console.js";

const params = new URLSearchParams(window.location.search);
const ONLY = params.get("session"); // ?session=NAME: that session's view alone
const ITEM = params.get("item"); // ?session=NAME&item=ID: one item
const REFRESH_MS = Math.max(200, 1000 * (parseFloat(params.get("refresh")) || 2));
const PAGE_SIZE = Math.min(1000, Math.max(1, parseInt(params.get("page_size"), 10) || 25));
const INLINE_SESSIONS = 3; // up to this many sessions show their live view on the list page
const MESSAGE_MS = 10_000; // an action's message stays this long

const state = {
  needToken: false,
  healthChecked: false,
  failingSince: null,
  timer: null,
  cursors: {}, // session -> {leased: [cursor stack], failed: [cursor stack]}
  rendered: {}, // session -> what was last drawn (skip identical redraws)
  message: {}, // session -> {text, error, at} of the last action
  indexesOpen: {}, // session -> whether its index table is unfolded (kept across redraws)
  samples: {}, // session -> every throughput sample received (only newer ones are asked for)
  started: {}, // session -> the started_at of the run those samples belong to
  workersOpen: {}, // session -> whether its workers view is unfolded (it is asked for only then)
  filter: readFilter(params),
};

const ctx = {
  pageSize: PAGE_SIZE,
  indexesOpen: state.indexesOpen,
  workersOpen: state.workersOpen,
  get filter() {
    return state.filter;
  },
  refresh: () => refresh(),
  cursorsOf,
  messageOf,
  confirmRetry,
  confirmAction,
  setMessage,
  setFilter(filter) {
    state.filter = filter;
    writeFilter(filter);
    refresh();
  },
};

function cursorsOf(name) {
  if (!state.cursors[name]) state.cursors[name] = { leased: [], failed: [] };
  return state.cursors[name];
}

function messageOf(name) {
  const m = state.message[name];
  if (m && Date.now() - m.at > MESSAGE_MS) delete state.message[name];
  return state.message[name] || null;
}

function setMessage(name, text, error) {
  state.message[name] = { text, error: Boolean(error), at: Date.now() };
}

function overviewPath(name) {
  const c = cursorsOf(name);
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const leased = c.leased[c.leased.length - 1];
  const failed = c.failed[c.failed.length - 1];
  if (leased) q.set("leased_after", leased);
  if (failed) q.set("failed_after", failed);
  const samples = state.samples[name];
  if (samples && samples.length) q.set("samples_after", samples[samples.length - 1].sampled_at);
  return `sessions/${seg(name)}/backfill/overview?${q}`;
}

// The overview sends only the samples after the newest one the page holds: keep them all here.
// The server keeps an hour of them; the page keeps what it received for as long as it is open, so
// the chart covers the whole run it has seen (and, before that, one bar from the run's start).
// A complete answer replaces them, but for older ones of the same run (same started_at).
function withSamples(name, data) {
  const byTime = new Map();
  const sameRun = state.started[name] === data.status.started_at;
  const first = data.samples.length ? Date.parse(data.samples[0].sampled_at) : Infinity;
  for (const x of state.samples[name] || []) {
    const t = Date.parse(x.sampled_at);
    if (!data.samples_complete || (sameRun && t < first)) byTime.set(t, x);
  }
  for (const x of data.samples) byTime.set(Date.parse(x.sampled_at), x);
  const merged = [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([, x]) => x);
  state.samples[name] = merged;
  state.started[name] = data.status.started_at;
  return { ...data, samples: merged };
}

// -- the refresh loop -------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  state.timer = null;
  if (state.needToken || document.hidden) return; // the form, or visibilitychange, starts it again
  try {
    if (!auth.token && !state.healthChecked) {
      // Ask the public health route whether a token is needed, instead of being refused first.
      const health = await api("health");
      state.healthChecked = true;
      if (health.token_required) {
        askForToken("");
        return;
      }
    }
    if (ONLY !== null && ITEM !== null) await drawItem(ONLY, ITEM);
    else if (ONLY !== null) await drawOne(ONLY);
    else await drawList();
    markOnline();
  } catch (err) {
    if (err instanceof HttpFailure && err.status === 401) {
      askForToken(auth.token ? "The server did not accept that token. Enter the right one." : "");
      return;
    }
    if (err instanceof HttpFailure) markFailing(`The server answered HTTP ${err.status}${err.code ? ` (${err.code})` : ""}: ${err.message}.`);
    else markFailing("The server is not answering.");
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearTimeout(state.timer);
    state.timer = null;
  } else if (!state.needToken) {
    refresh(); // at once: what is shown must be current
  }
});

window.addEventListener("popstate", () => {
  state.filter = readFilter(new URLSearchParams(window.location.search));
  refresh();
});

function markOnline() {
  state.failingSince = null;
  $("offline").hidden = true;
  document.body.classList.remove("stale");
  $("connection").textContent = `Live: refreshed ${when(new Date())}, every ${REFRESH_MS / 1000}s`;
}

// Any failure but a refused token: the banner says what, and the figures are dimmed as old.
function markFailing(what) {
  if (state.failingSince === null) state.failingSince = new Date();
  const banner = $("offline");
  banner.hidden = false;
  banner.textContent =
    `${what} Failing since ${when(state.failingSince)}. ` +
    `The figures below are the last received. Retrying every ${REFRESH_MS / 1000}s…`;
  document.body.classList.add("stale");
  $("connection").textContent = "Not up to date";
}

// -- token flow ---------------------------------------------------------------------------------------

function askForToken(problem) {
  state.needToken = true;
  $("token-panel").hidden = false;
  $("sessions-panel").hidden = true;
  $("views").replaceChildren();
  $("token-error").textContent = problem;
  $("connection").textContent = "Waiting for a token";
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  auth.token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token-input").value = "";
  $("token-error").textContent = "";
  $("token-panel").hidden = true;
  state.needToken = false;
  refresh();
});

// -- the session list ----------------------------------------------------------------------------------

async function drawList() {
  const all = await api("sessions/summary");
  const names = all.sessions.map((x) => x.session_name);
  const shown = names.length <= INLINE_SESSIONS ? names : [];
  const views = await Promise.all(shown.map(async (name) => withSamples(name, await api(overviewPath(name)))));
  renderSessions(all.sessions);
  renderViews(shown, views);
  const alerts = all.sessions.reduce((sum, x) => sum + alertCount(x.status, x.counts), 0);
  document.title = `${names.length} session${names.length === 1 ? "" : "s"} · ${alerts} alert${alerts === 1 ? "" : "s"} · litecoord`;
}

function renderSessions(sessions) {
  const panel = $("sessions-panel");
  panel.hidden = false;
  const rows = sessions.map((x) => {
    const st = x.status;
    const eta = etaText(st);
    return h(
      "tr",
      { "data-session-row": x.session_name },
      rowHead("Session", {}, h("a", { href: sessionHref(x.session_name) }, x.session_name)),
      td("Items", { class: "num" }, num(st.total_work_items)),
      td("Completed", { class: "num" }, num(st.completed_work_items)),
      td("Progress", { "data-field": "progress" }, bar(st.total_work_items ? st.percent_complete : null, `${x.session_name}: complete`)),
      td("Failed", { class: st.failed_work_items ? "num bad" : "num", "data-field": "failed" }, num(st.failed_work_items)),
      td("Stalled", { class: x.counts.stalled ? "num bad" : "num", "data-field": "stalled" }, num(x.counts.stalled)),
      td("ETA", { "data-field": "eta", title: eta.detail }, eta.text),
    );
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7 }, "No sessions yet.")));
  keepFocus(() => $("sessions-table").tBodies[0].replaceChildren(...rows));
  $("sessions-note").textContent =
    sessions.length > INLINE_SESSIONS
      ? `${sessions.length} sessions: open one for its live view.`
      : sessions.length
        ? "Live views below; open a session for its own page."
        : "";
}

// -- a session's live view ------------------------------------------------------------------------------

async function drawOne(name) {
  $("sessions-panel").hidden = true;
  let data;
  try {
    data = withSamples(name, await api(overviewPath(name)));
  } catch (err) {
    if (err instanceof HttpFailure && err.code === "session_not_found") {
      drawMissing(name);
      return;
    }
    throw err;
  }
  const st0 = data.status;
  const failing = (st0.failed_work_items || 0) + (st0.retrying_work_items || 0) > 0;
  const backfill = `sessions/${seg(name)}/backfill`;
  // Asked only when there is something to show: failures when some failed, the workers when open.
  // The coverage audit reads every item, so it is asked only once nothing is left to hand out.
  const done = (st0.total_work_items || 0) > 0 && (st0.pending_work_items || 0) + (st0.assigned_work_items || 0) === 0;
  const [found, failures, workers, coverage] = await Promise.all([
    filterActive(state.filter) ? api(`${backfill}/items?${filterQuery(state.filter, PAGE_SIZE)}`) : null,
    failing ? optional(api(`${backfill}/failures`)) : null,
    state.workersOpen[name] ? optional(api(`${backfill}/workers`)) : null,
    done ? optional(api(`${backfill}/coverage`)) : null,
  ]);
  renderViews([name], [{ ...data, console: { failures, workers, coverage } }], found);
  const st = data.status;
  const alerts = alertCount(st, data.counts);
  document.title = `${NF1.format(st.percent_complete)}% · ${alerts} alert${alerts === 1 ? "" : "s"} · ${name} · litecoord`;
}

// A console route a server of an older version does not have: nothing to show, no failure.
async function optional(request) {
  try {
    return await request;
  } catch (err) {
    if (err instanceof HttpFailure && err.code === "not_found") return null;
    throw err;
  }
}

function drawMissing(name) {
  const container = $("views");
  const key = `missing:${name}`;
  if (state.rendered[name] === key) return;
  state.rendered[name] = key;
  container.replaceChildren(
    h(
      "section",
      { class: "panel session missing", "data-session": name, "aria-labelledby": "missing-title" },
      h("p", { class: "back" }, h("a", { href: "./" }, "← All sessions")),
      h("h2", { id: "missing-title" }, "No such session"),
      h(
        "p",
        { class: "error", role: "alert", "data-field": "missing" },
        `There is no session named “${name}” in this server's database. Check the name, or open the list of sessions.`,
      ),
      h("p", { class: "note" }, "A session appears when its first item is created; this page shows it then."),
    ),
  );
  document.title = `No such session: ${name} · litecoord`;
}

function renderViews(shown, views, found) {
  const container = $("views");
  container.classList.toggle("single", shown.length === 1);
  const present = new Set(shown);
  shown.forEach((name, i) => {
    let section = container.querySelector(`section[data-session="${CSS.escape(name)}"]:not(.missing)`);
    if (!section) {
      container.querySelector(`section[data-session="${CSS.escape(name)}"]`)?.remove();
      section = sessionShell(name);
      container.append(section);
      state.rendered[name] = null;
    }
    const message = messageOf(name);
    const key = JSON.stringify(views[i]) + (message ? message.text : "");
    if (state.rendered[name] !== key) {
      state.rendered[name] = key;
      const live = section.querySelector(".live");
      const fresh = liveView(name, views[i]).filter(Boolean);
      keepFocus(() => live.replaceChildren(...fresh));
    }
    const results = section.querySelector(".found-results");
    if (results) {
      const foundKey = found ? JSON.stringify(found) : "";
      if (results.dataset.drawn !== foundKey) {
        results.dataset.drawn = foundKey;
        keepFocus(() => results.replaceChildren(...(found ? foundTable(found, name, ctx) : [])));
      }
    }
  });
  for (const section of [...container.children]) {
    if (!present.has(section.dataset.session)) {
      delete state.rendered[section.dataset.session];
      section.remove();
    }
  }
}

// The parts of a session's section that stay across refreshes (title, the find form), and a
// .live part redrawn from each overview.
function sessionShell(name) {
  const titleId = `title-${name}`;
  const section = h("section", { class: "panel session", "data-session": name, "aria-labelledby": titleId });
  if (ONLY !== null) section.append(h("p", { class: "back" }, h("a", { href: "./" }, "← All sessions")));
  section.append(h("h2", { id: titleId }, `Session ${name}`), h("div", { class: "live" }));
  if (ONLY !== null) section.append(findForm(name, ctx));
  return section;
}

function liveView(name, data) {
  const message = messageOf(name);
  const said = message ? h("p", { class: message.error ? "error" : "message", role: "status", "data-field": "message" }, message.text) : null;
  const parts = [said, summary(data), totals(data), chart(data), indexTable(data, name, ctx), leasedTable(data, name, ctx), failedTable(data, name, ctx)];
  if (ONLY === null || !data.console) return parts;
  // One session's own page: the operator's controls too.
  const { failures, workers, coverage } = data.console;
  return [
    pauseControl(name, data.status, ctx),
    ...parts,
    coverageTable(coverage),
    failureGroups(name, failures, ctx),
    workersTable(name, workers, Boolean(state.workersOpen[name]), ctx),
  ];
}

// -- one item ---------------------------------------------------------------------------------------------

async function drawItem(name, id) {
  $("sessions-panel").hidden = true;
  await itemView(name, id, ctx, state);
}

// -- confirmations -------------------------------------------------------------------------------------------

// A modal question; the safe choice has the focus. When it closes, the focus goes back to the
// control that opened it, or, when a refresh replaced that control meanwhile, to its successor
// (same data-key) or its fallback: never to <body>.
function confirmAction({ title, text, ok, run }) {
  const dialog = $("confirm");
  const opener = document.activeElement;
  const key = opener && opener.dataset ? opener.dataset.key : null;
  const fallback = opener && opener.dataset ? opener.dataset.fallback : null;
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (opener && opener.isConnected && opener.focus) opener.focus();
    else if (!focusKey(key, fallback)) $("main").focus();
    if (dialog.returnValue !== "ok") return;
    await run();
    refresh();
  };
  dialog.showModal();
  $("confirm-cancel").focus();
}

function confirmRetry(name, id) {
  confirmAction({
    title: "Retry this item?",
    text: `Return ${id} (session ${name}) to pending with its failure count cleared? A worker will pick it up again.`,
    ok: "Retry",
    run: async () => {
      try {
        await api(`sessions/${seg(name)}/backfill/work-items/${seg(id)}/retry`, { method: "POST", body: {} });
        setMessage(name, `${id} was returned to pending.`);
      } catch (err) {
        setMessage(name, `Retry of ${id} failed: ${err.message}`, true);
      }
    },
  });
}

refresh();
