// litecoord's status page: hand-written, no dependencies, no build step.
//
// Every refresh asks the server for the session list and, for each session
// shown, one overview (GET sessions/NAME/backfill/overview): aggregates, flag
// counts and one page of leased and of failed items. Never every item, so a
// backfill of 100,000 items costs what one of 1,000 does. All ages and flags
// come from the server's clock (as_of), never from this browser's.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const ONLY = params.get("session"); // ?session=NAME: that session's view alone
  const REFRESH_MS = Math.max(200, 1000 * (parseFloat(params.get("refresh")) || 2));
  const PAGE_SIZE = Math.min(1000, Math.max(1, parseInt(params.get("page_size"), 10) || 25));
  const INLINE_SESSIONS = 3; // up to this many sessions show their live view on the list page
  const TOKEN_KEY = "litecoord.token";
  const NF = new Intl.NumberFormat("en-US");
  const NF1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    needToken: false,
    failingSince: null,
    timer: null,
    cursors: {}, // session -> {leased: [cursor stack], failed: [cursor stack]}
    rendered: {}, // session -> JSON last rendered (skip identical redraws)
    message: {}, // session -> text of the last action (retry)
    indexesOpen: {}, // session -> whether its index table is unfolded (kept across redraws)
  };

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers (text only: data never becomes markup) -----------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
    for (const child of children) el.append(child);
    return el;
  }

  // -- formatting -------------------------------------------------------------------

  function num(n) {
    return n === null || n === undefined ? "?" : NF.format(n);
  }

  function bytes(n) {
    if (n === null || n === undefined) return "?";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${NF.format(value)} B` : `${NF1.format(value)} ${units[unit]}`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "?";
    let rest = Math.round(Math.abs(seconds));
    const d = Math.floor(rest / 86400);
    rest %= 86400;
    const hh = Math.floor(rest / 3600);
    rest %= 3600;
    const mm = Math.floor(rest / 60);
    const ss = rest % 60;
    if (d) return `${d}d ${hh}h`;
    if (hh) return `${hh}h ${String(mm).padStart(2, "0")}m`;
    if (mm) return `${mm}m ${String(ss).padStart(2, "0")}s`;
    return `${ss}s`;
  }

  // Server times are RFC 3339 UTC; show them to the second.
  function shortTime(text) {
    return text ? text.replace(/\.\d+Z$/, "Z").replace("T", " ") : "?";
  }

  function pct(done, total) {
    if (!total) return null;
    return Math.min(100, (100 * done) / total);
  }

  function bar(percent, label) {
    const known = percent !== null && percent !== undefined;
    const fill = h("span", { class: "fill" });
    fill.style.width = `${known ? percent : 0}%`; // CSSOM: allowed by the page's CSP
    return h(
      "span",
      { class: "bar-wrap" },
      h(
        "span",
        {
          class: known ? "bar" : "bar unknown",
          role: "progressbar",
          "aria-label": label,
          "aria-valuemin": 0,
          "aria-valuemax": 100,
          "aria-valuenow": known ? percent.toFixed(1) : null,
          "aria-valuetext": known ? `${percent.toFixed(1)}%` : "unknown",
        },
        fill,
      ),
      h("span", { class: "bar-text" }, known ? `${percent.toFixed(1)}%` : "?"),
    );
  }

  const FLAG_TEXT = {
    lapsed: ["LAPSED", "the lease expired: its worker stopped renewing; the next acquire hands it on"],
    silent: ["SILENT", "no heartbeat for longer than a third of the lease"],
    stalled: ["STALLED", "heartbeats arrive but progress has not moved"],
    failed: ["FAILED", "parked after repeated failures; waits for a retry"],
  };

  function flagBadges(flags) {
    if (!flags.length) return h("span", { class: "flag ok" }, "ok");
    return flags.map((f) => h("span", { class: `flag flag-${f}`, title: FLAG_TEXT[f][1] }, FLAG_TEXT[f][0]));
  }

  // -- requests ------------------------------------------------------------------------

  class HttpFailure extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, options) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`; // never in the URL
    const init = { method: "GET", cache: "no-store", credentials: "omit", headers };
    if (options && options.body !== undefined) {
      init.method = options.method || "POST";
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) throw new HttpFailure(response.status, body);
    return body;
  }

  function seg(text) {
    // "." and ".." would be resolved away by the URL parser; escape them.
    return text === "." || text === ".." ? text.replace(/\./g, "%2E") : encodeURIComponent(text);
  }

  function overviewPath(name) {
    const c = cursorsOf(name);
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const leased = c.leased[c.leased.length - 1];
    const failed = c.failed[c.failed.length - 1];
    if (leased) q.set("leased_after", leased);
    if (failed) q.set("failed_after", failed);
    return `sessions/${seg(name)}/backfill/overview?${q}`;
  }

  function cursorsOf(name) {
    if (!state.cursors[name]) state.cursors[name] = { leased: [], failed: [] };
    return state.cursors[name];
  }

  // -- the refresh loop ---------------------------------------------------------------------

  async function refresh() {
    clearTimeout(state.timer);
    if (state.needToken) return; // wait for the form
    try {
      const sessions = await api("sessions/");
      const names = sessions.map((x) => x.session_name);
      let shown;
      if (ONLY !== null) shown = [ONLY];
      else shown = names.length <= INLINE_SESSIONS ? names : [];
      const views = await Promise.all(shown.map((name) => api(overviewPath(name))));
      markOnline();
      renderSessions(sessions);
      renderViews(shown, views, names);
    } catch (err) {
      if (err instanceof HttpFailure && err.status === 401) {
        askForToken(state.token ? "The server did not accept that token. Enter the right one." : "");
        return;
      }
      if (err instanceof HttpFailure) markOnline(`last request failed: ${err.message}`);
      else markOffline();
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  function markOnline(problem) {
    state.failingSince = null;
    $("offline").hidden = true;
    document.body.classList.remove("stale");
    const now = new Date().toLocaleTimeString();
    $("connection").textContent = problem
      ? `Connected; ${problem}`
      : `Live: refreshed at ${now}, every ${REFRESH_MS / 1000}s`;
  }

  function markOffline() {
    if (state.failingSince === null) state.failingSince = new Date();
    const banner = $("offline");
    banner.hidden = false;
    banner.textContent =
      `The server is not answering (since ${state.failingSince.toLocaleTimeString()}). ` +
      `The figures below are the last received. Retrying every ${REFRESH_MS / 1000}s…`;
    document.body.classList.add("stale");
    $("connection").textContent = "Not connected";
  }

  // -- token flow -----------------------------------------------------------------------------

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
    state.token = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("token-error").textContent = "";
    $("token-panel").hidden = true;
    state.needToken = false;
    refresh();
  });

  // -- the session list ------------------------------------------------------------------------

  function sessionHref(name) {
    return `?${new URLSearchParams({ session: name })}`;
  }

  function renderSessions(sessions) {
    const panel = $("sessions-panel");
    if (ONLY !== null) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    const rows = sessions.map((x) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: sessionHref(x.session_name) }, x.session_name)),
        h("td", { class: "num" }, num(x.total_work_items)),
        h("td", { class: "num" }, num(x.completed_work_items)),
        h("td", {}, bar(pct(x.completed_work_items, x.total_work_items), `${x.session_name}: items completed`)),
      ),
    );
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4 }, "No sessions yet.")));
    keepFocus(() => $("sessions-table").tBodies[0].replaceChildren(...rows));
    $("sessions-note").textContent =
      sessions.length > INLINE_SESSIONS
        ? `${sessions.length} sessions: open one for its live view.`
        : sessions.length
          ? "Live views below; open a session for its own page."
          : "";
  }

  // Redraws replace elements; give focus back to the element with the same key.
  function keepFocus(draw) {
    const active = document.activeElement;
    const key = active && active.dataset ? active.dataset.key : null;
    draw();
    if (key) {
      const again = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (again) again.focus();
    }
  }

  // -- a session's live view ----------------------------------------------------------------------

  function renderViews(shown, views, names) {
    const container = $("views");
    container.classList.toggle("single", shown.length === 1);
    const present = new Set();
    shown.forEach((name, i) => {
      present.add(name);
      const data = views[i];
      const json = JSON.stringify(data) + (state.message[name] || "");
      let section = container.querySelector(`section[data-session="${CSS.escape(name)}"]`);
      if (section && state.rendered[name] === json) return; // nothing changed
      state.rendered[name] = json;
      const fresh = sessionView(name, data, names.includes(name));
      keepFocus(() => {
        if (section) section.replaceWith(fresh);
        else container.append(fresh);
      });
    });
    for (const section of [...container.children]) {
      if (!present.has(section.dataset.session)) {
        delete state.rendered[section.dataset.session];
        section.remove();
      }
    }
  }

  function sessionView(name, data, exists) {
    const st = data.status;
    const counts = data.counts;
    const titleId = `title-${name}`;
    const section = h("section", { class: "panel session", "data-session": name, "aria-labelledby": titleId });
    const title = h("h2", { id: titleId }, `Session ${name}`);
    if (ONLY !== null) {
      section.append(h("p", { class: "back" }, h("a", { href: "./" }, "← All sessions")));
    }
    section.append(title);
    if (!exists) {
      section.append(h("p", { class: "note" }, "No such session (yet): it appears when its first item is created."));
    }
    const pending = st.pending_work_items - st.expired_lease_work_items;
    const done = st.total_work_items && st.completed_work_items === st.total_work_items;
    const summary = h(
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
    section.append(summary);

    const rate = st.documents_per_second;
    const eta = done ? "done" : st.eta_seconds === null ? "unknown" : `${duration(st.eta_seconds)}`;
    section.append(
      h(
        "div",
        { class: "totals" },
        h(
          "p",
          {},
          h("span", { class: "what" }, "Documents "),
          bar(pct(st.total_documents_processed, st.total_documents), "documents processed"),
          h(
            "span",
            { class: "figure", "data-field": "documents" },
            `${num(st.total_documents_processed)} / ${num(st.total_documents)}`,
          ),
        ),
        h(
          "p",
          {},
          h("span", { class: "what" }, "Bytes "),
          bar(pct(st.total_bytes_processed, st.total_size_bytes), "bytes processed"),
          h(
            "span",
            { class: "figure", "data-field": "bytes" },
            `${bytes(st.total_bytes_processed)} / ${bytes(st.total_size_bytes)}`,
          ),
        ),
        h(
          "p",
          { class: "rates" },
          `Throughput ${rate === null ? "?" : num(Math.round(rate))} docs/s, `,
          `${st.bytes_per_second === null ? "?" : bytes(Math.round(st.bytes_per_second))}/s · ETA `,
          h("span", { "data-field": "eta" }, eta),
          st.estimated_completion && !done ? ` (at ${shortTime(st.estimated_completion)})` : "",
          ` · as of ${shortTime(data.as_of)}`,
        ),
      ),
    );
    section.append(chart(data, name));
    section.append(indexTable(data, name));
    section.append(leasedTable(data, name));
    section.append(failedTable(data, name));
    return section;
  }

  function stateItem(label, value, field, alert) {
    return h(
      "div",
      { class: alert ? "state alert" : "state" },
      h("dt", {}, label),
      h("dd", { "data-field": field }, num(value)),
    );
  }

  // Throughput over time: documents per second between consecutive samples, as an SVG bar chart.
  function chart(data, name) {
    const figure = h("figure", { class: "chart" });
    const points = [];
    // The samples (one per 10 s of activity at most), then the totals as of now: the last bar is
    // the throughput since the latest sample.
    const st = data.status;
    const samples = data.samples.slice();
    const last = samples[samples.length - 1];
    if (last && Date.parse(data.as_of) > Date.parse(last.sampled_at) && st.total_documents_processed !== last.documents_processed) {
      samples.push({ sampled_at: data.as_of, documents_processed: st.total_documents_processed });
    }
    for (let i = 1; i < samples.length; i += 1) {
      const dt = (Date.parse(samples[i].sampled_at) - Date.parse(samples[i - 1].sampled_at)) / 1000;
      if (dt <= 0) continue;
      const docs = Math.max(0, samples[i].documents_processed - samples[i - 1].documents_processed);
      points.push({ t: samples[i].sampled_at, from: Date.parse(samples[i - 1].sampled_at), dt, rate: docs / dt });
    }
    const caption = h("figcaption", {}, "Throughput over the last hour (documents per second)");
    if (points.length === 0) {
      figure.append(caption, h("p", { class: "note" }, "No progress recorded yet."));
      return figure;
    }
    const W = 600;
    const H = 120;
    const max = Math.max(...points.map((p) => p.rate), 1);
    // A time axis: each bar spans its interval; at least 5 minutes are shown, so a young backfill's
    // first intervals are narrow bars on the right, not one bar across the chart.
    const end = Date.parse(points[points.length - 1].t);
    const span = Math.max(300_000, end - points[0].from);
    const xOf = (ms) => ((ms - (end - span)) / span) * W;
    const latest = points[points.length - 1];
    const svg = s("svg", {
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": `Throughput chart: ${points.length} intervals, peak ${num(Math.round(max))} docs/s, latest ${num(
        Math.round(latest.rate),
      )} docs/s`,
      preserveAspectRatio: "none",
    });
    points.forEach((p) => {
      const height = Math.max(1, (p.rate / max) * H);
      const x = xOf(p.from);
      const rect = s("rect", {
        x: x.toFixed(1),
        y: (H - height).toFixed(1),
        width: Math.max(1, xOf(p.from + p.dt * 1000) - x - 0.5).toFixed(1),
        height: height.toFixed(1),
        class: "col",
      });
      rect.append(s("title", {}, document.createTextNode(`${p.t}: ${num(Math.round(p.rate))} docs/s`)));
      svg.append(rect);
    });
    // Labels are HTML beside the drawing: the SVG stretches to the width, text would stretch with it.
    const axis = h(
      "p",
      { class: "axis" },
      h("span", {}, `${shortTime(new Date(end - span).toISOString())}`),
      h("span", {}, `peak ${num(Math.round(max))} docs/s · latest ${num(Math.round(latest.rate))} docs/s`),
      h("span", {}, `${shortTime(latest.t)}`),
    );
    figure.append(caption, svg, axis);
    return figure;
  }

  function indexTable(data, name) {
    const rows = data.indexes.map((ix) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, ix.index_name === null ? h("em", {}, "(no index)") : ix.index_name),
        h("td", { class: "num" }, `${num(ix.completed_work_items)} / ${num(ix.total_work_items)}`),
        h("td", { class: "num" }, num(ix.assigned_work_items - ix.lapsed_work_items)),
        h("td", { class: "num" }, ix.failed_work_items ? h("strong", {}, num(ix.failed_work_items)) : "0"),
        h("td", {}, bar(pct(ix.documents_processed, ix.total_documents), `${ix.index_name || "no index"}: documents`)),
        h("td", { class: "num" }, `${num(ix.documents_processed)} / ${num(ix.total_documents)}`),
      ),
    );
    const more =
      data.indexes_total > data.indexes.length
        ? h("p", { class: "note" }, `Showing ${data.indexes.length} of ${num(data.indexes_total)} indexes.`)
        : null;
    const open = name in state.indexesOpen ? state.indexesOpen[name] : data.indexes_total <= 20;
    return h(
      "details",
      {
        class: "block",
        open,
        ontoggle: (event) => {
          state.indexesOpen[name] = event.target.open;
        },
      },
      h("summary", { "data-key": `${name}:indexes` }, h("h3", {}, `Indexes (${num(data.indexes_total)})`)),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "indexes" },
          h("caption", { class: "visually-hidden" }, `Progress per index of session ${name}`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Index"),
              h("th", { scope: "col", class: "num" }, "Items done"),
              h("th", { scope: "col", class: "num" }, "In progress"),
              h("th", { scope: "col", class: "num" }, "Failed"),
              h("th", { scope: "col" }, "Documents"),
              h("th", { scope: "col", class: "num" }, "Processed"),
            ),
          ),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, "No items."))),
        ),
      ),
      more,
    );
  }

  function pager(name, kind, page) {
    const stack = cursorsOf(name)[kind];
    const pageNo = stack.length + 1;
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    if (pages === 1 && pageNo === 1) return null;
    return h(
      "nav",
      { class: "pager", "aria-label": `${kind} items pages` },
      h(
        "button",
        {
          type: "button",
          "data-key": `${name}:${kind}:prev`,
          disabled: stack.length === 0,
          onclick: () => {
            stack.pop();
            refresh();
          },
        },
        "← Previous",
      ),
      h("span", {}, ` page ${pageNo} of ${pages} `),
      h(
        "button",
        {
          type: "button",
          "data-key": `${name}:${kind}:next`,
          disabled: !page.next_cursor,
          onclick: () => {
            stack.push(page.next_cursor);
            refresh();
          },
        },
        "Next →",
      ),
    );
  }

  function leasedTable(data, name) {
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
        h("td", { class: "flags" }, flagBadges(it.flags)),
        h("th", { scope: "row", class: "id" }, it.work_item_id),
        h("td", {}, it.worker_id || "?"),
        h("td", { title: it.lease_expiry || "" }, expiry),
        h("td", { class: "num" }, it.heartbeat_age_seconds === null ? "?" : `${duration(it.heartbeat_age_seconds)} ago`),
        h(
          "td",
          {},
          bar(pct(it.documents_processed, it.document_count), `${it.work_item_id}: documents`),
          h("span", { class: "small" }, `${num(it.documents_processed)} / ${num(it.document_count)}`),
        ),
        h("td", {}, bar(pct(it.bytes_processed, it.total_size_bytes), `${it.work_item_id}: bytes`)),
      );
    });
    const c = data.counts;
    return h(
      "section",
      { class: "block", "aria-label": `Leased items of session ${name}` },
      h(
        "h3",
        {},
        `Leased items (${num(page.total)}: ${num(c.live)} live, ${num(c.lapsed)} lapsed, ${num(c.stalled)} stalled, ${num(
          c.silent,
        )} silent)`,
      ),
      h(
        "p",
        { class: "note" },
        `Flags: LAPSED the lease expired; SILENT no heartbeat for over a third of the lease; STALLED heartbeats ` +
          `but no progress for ${duration(data.stall_after_seconds)}. Lapsed leases come first.`,
      ),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "leased" },
          h("caption", { class: "visually-hidden" }, `Leased items of session ${name}`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["Flags", "Item", "Worker", "Lease expires", "Heartbeat", "Documents", "Bytes"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7 }, "No item is leased."))),
        ),
      ),
      pager(name, "leased", page),
    );
  }

  function failedTable(data, name) {
    const page = data.failed;
    const rows = page.items.map((it) =>
      h(
        "tr",
        { "data-item": it.work_item_id, class: "flagged" },
        h("td", { class: "flags" }, flagBadges(it.flags)),
        h("th", { scope: "row", class: "id" }, it.work_item_id),
        h("td", { class: "num" }, num(it.failure_count)),
        h("td", { class: "error-text" }, h("code", {}, it.last_error || "")),
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              class: "retry",
              "data-key": `${name}:retry:${it.work_item_id}`,
              "aria-label": `Retry ${it.work_item_id}`,
              onclick: () => confirmRetry(name, it.work_item_id),
            },
            "Retry…",
          ),
        ),
      ),
    );
    return h(
      "section",
      { class: "block", "aria-label": `Failed items of session ${name}` },
      h("h3", {}, `Failed items (${num(page.total)})`),
      state.message[name] ? h("p", { class: "message", role: "status" }, state.message[name]) : null,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "failed" },
          h("caption", { class: "visually-hidden" }, `Failed items of session ${name}`),
          h(
            "thead",
            {},
            h("tr", {}, ...["Flags", "Item", "Failures", "Last error", "Action"].map((t) => h("th", { scope: "col" }, t))),
          ),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5 }, "No failed items."))),
        ),
      ),
      pager(name, "failed", page),
    );
  }

  // -- retry, with confirmation ----------------------------------------------------------------

  function confirmRetry(name, id) {
    const dialog = $("confirm");
    const opener = document.activeElement;
    $("confirm-text").textContent =
      `Return ${id} (session ${name}) to pending with its failure count cleared? ` +
      "A worker will pick it up again.";
    dialog.returnValue = "";
    dialog.onclose = async () => {
      if (opener && opener.focus) opener.focus();
      if (dialog.returnValue !== "ok") return;
      const path = `sessions/${seg(name)}/backfill/work-items/${seg(id)}/retry`;
      try {
        await api(path, { method: "POST", body: {} });
        state.message[name] = `${id} was returned to pending.`;
      } catch (err) {
        state.message[name] = `Retry of ${id} failed: ${err.message}`;
      }
      refresh();
    };
    dialog.showModal();
    $("confirm-cancel").focus(); // the safe choice has the focus
  }

  refresh();
})();
