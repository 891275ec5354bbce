// litecoord's status page: what every view uses. DOM building (text only: data never becomes
// markup), formatting (one time format, UTC, written), and requests (the token in a header, never
// in a URL; ETag/If-None-Match, so an unchanged read costs a 304 and no body).
"use strict";

export const NF = new Intl.NumberFormat("en-US");
export const NF1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
export const TOKEN_KEY = "litecoord.token";

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs, ...children) {
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
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

// -- formatting ----------------------------------------------------------------------------

export function num(n) {
  return n === null || n === undefined ? "?" : NF.format(n);
}

export function bytes(n) {
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

export function duration(seconds) {
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

// The one time format of the page: the server's RFC 3339 UTC times (and the browser's own
// "refreshed at") as "2026-12-06 06:42:55 UTC", to the second, the zone written.
export function when(value) {
  if (value === null || value === undefined || value === "") return "?";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "?";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export function pct(done, total) {
  if (!total) return null;
  return Math.min(100, (100 * done) / total);
}

export function bar(percent, label) {
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

export const FLAG_TEXT = {
  lapsed: ["LAPSED", "the lease expired: its worker stopped renewing; the next acquire hands it on"],
  silent: ["SILENT", "no heartbeat for longer than a third of the lease"],
  stalled: ["STALLED", "heartbeats arrive but progress has not moved"],
  failed: ["FAILED", "parked after repeated failures; waits for a retry"],
};

export function flagBadges(flags) {
  if (!flags || !flags.length) return h("span", { class: "flag ok" }, "ok");
  return flags.map((f) => h("span", { class: `flag flag-${f}`, title: FLAG_TEXT[f][1] }, FLAG_TEXT[f][0]));
}

// A table cell that also carries its column's name: on a phone each row is a card of labelled lines.
export function td(label, attrs, ...children) {
  return h("td", { ...(attrs || {}), "data-label": label }, ...children);
}

export function rowHead(label, attrs, ...children) {
  return h("th", { scope: "row", ...(attrs || {}), "data-label": label }, ...children);
}

export function table(cls, caption, columns, rows, empty) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: `${cls} stack` },
      h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          columns.map((c) => (typeof c === "string" ? h("th", { scope: "col" }, c) : h("th", { scope: "col", class: c[1] }, c[0]))),
        ),
      ),
      h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colspan: columns.length }, empty))),
    ),
  );
}

// -- links -------------------------------------------------------------------------------------

export function seg(text) {
  // "." and ".." would be resolved away by the URL parser; escape them.
  return text === "." || text === ".." ? text.replace(/\./g, "%2E") : encodeURIComponent(text);
}

// Links keep the page's own options (refresh period, page size), not its filter.
const KEPT = ["refresh", "page_size"];

export function sessionHref(name, extra) {
  const here = new URLSearchParams(window.location.search);
  const params = new URLSearchParams({ session: name, ...(extra || {}) });
  for (const key of KEPT) if (here.has(key)) params.set(key, here.get(key));
  return `?${params}`;
}

export function itemLink(session, id) {
  return h("a", { href: sessionHref(session, { item: id }), class: "item-link" }, id);
}

// -- requests ------------------------------------------------------------------------------------

export class HttpFailure extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }
}

export const auth = { token: sessionStorage.getItem(TOKEN_KEY) };

// The last answer to each GET, by path: sent back as If-None-Match; a 304 reuses the body.
const tagged = new Map();
const TAGGED_MAX = 64;

export async function api(path, options) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`; // never in the URL
  // no-store: the browser's cache never answers for us, so a 304 reaches this code and we know
  // nothing changed (the body is ours from last time).
  const init = { method: "GET", cache: "no-store", credentials: "omit", headers };
  const write = options && options.body !== undefined;
  if (write) {
    init.method = options.method || "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const known = write ? undefined : tagged.get(path);
  if (known) headers["If-None-Match"] = known.etag;
  const response = await fetch(path, init);
  if (response.status === 304 && known) {
    tagged.delete(path); // most recently used last: the oldest are dropped first
    tagged.set(path, known);
    return known.body;
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) throw new HttpFailure(response.status, body);
  const etag = response.headers.get("ETag");
  if (!write && etag) {
    tagged.delete(path);
    tagged.set(path, { etag, body });
    while (tagged.size > TAGGED_MAX) tagged.delete(tagged.keys().next().value);
  }
  return body;
}

// Redraws replace elements; give focus back to the element with the same key, or else to its
// fallback (a row that went away gives the focus to its table's heading, never to <body>).
export function keepFocus(draw) {
  const active = document.activeElement;
  const key = active && active.dataset ? active.dataset.key : null;
  const fallback = active && active.dataset ? active.dataset.fallback : null;
  draw();
  if (key && !(active && active.isConnected)) focusKey(key, fallback);
}

export function focusKey(key, fallback) {
  for (const k of [key, fallback]) {
    if (!k) continue;
    const el = document.querySelector(`[data-key="${CSS.escape(k)}"]`);
    if (el) {
      el.focus();
      return el;
    }
  }
  return null;
}
