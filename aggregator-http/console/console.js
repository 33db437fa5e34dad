// The operator console: plain JavaScript over the public API, with the caller's key.
// Every value from the server goes into the page as text (never as HTML).
"use strict";

const KEY = "aggregator.console.key";
const POLL_MS = 3000;
const HISTORY = 120; // overview samples kept: 6 minutes at one every 3 s
const STATUSES = ["pending", "reserved", "confirmed", "failed", "cancelled", "expired"];
const QUEUES = ["order_queue", "stock_sync_queue", "webhook_queue"];

const STREAM_RETRY_MS = 30000; // a refused or broken stream is tried again after this
const REDRAW_MS = 250; // events arriving together cause one redraw

const state = {
  timer: null, samples: [], route: "", busy: false,
  stream: null, streamRetryAt: 0, lastEventId: null, redraw: null,
};

// ---- DOM helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(caption, headers, rows) {
  return h("table", {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((label) =>
      h("th", { scope: "col", class: label.num ? "num" : null }, label.text || label)))),
    h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: headers.length }, "None."))]));
}

function word(text) {
  return h("span", { class: String(text).toLowerCase().replace(/[^a-z-]/g, "-") }, text);
}

function when(text) {
  if (!text) return "never";
  const at = new Date(text);
  const seconds = Math.round((Date.now() - at.getTime()) / 1000);
  return `${at.toLocaleString()} (${seconds} s ago)`;
}

function say(text) {
  document.getElementById("status").textContent = text;
}

function showProblem(problem) {
  const box = document.getElementById("problem");
  box.replaceChildren();
  if (!problem) {
    box.hidden = true;
    return;
  }
  box.append(h("h2", {}, `${problem.status || ""} ${problem.title || "Something went wrong"}`.trim()));
  if (problem.detail) box.append(h("p", {}, problem.detail));
  for (const error of problem.errors || []) {
    box.append(h("p", {}, `${error.field}: ${error.reason || error.message || ""}`));
  }
  box.hidden = false;
}

// ---- the API -----------------------------------------------------------------------

class Problem extends Error {
  constructor(problem) {
    super(problem.detail || problem.title);
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json, text/plain" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Problem({ title: "The API did not answer", detail: String(error) });
  }
  const type = response.headers.get("content-type") || "";
  const payload = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new Problem(typeof payload === "object" ? payload
      : { status: response.status, title: response.statusText, detail: payload });
  }
  return payload;
}

// ---- metrics -----------------------------------------------------------------------

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function pick(samples, name, labels) {
  return samples.filter((s) => s.name === name &&
    Object.entries(labels || {}).every(([k, v]) => s.labels[k] === v));
}

function sum(samples) {
  return samples.reduce((total, s) => total + s.value, 0);
}

const PLACEMENT_ROUTES = ["/api/orders", "/order"];

function placements(samples) {
  return sum(samples.filter((s) => s.name === "http_requests_total" &&
    PLACEMENT_ROUTES.includes(s.labels.route) && s.labels.method === "POST" && s.labels.status === "201"));
}

function latencyBuckets(samples) {
  const buckets = new Map();
  for (const s of samples) {
    if (s.name !== "http_request_duration_seconds_bucket" || !PLACEMENT_ROUTES.includes(s.labels.route)) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  return buckets;
}

// The 99th percentile of placements answered between two samples, from bucket deltas.
function p99Between(before, after) {
  const now = latencyBuckets(after.metrics);
  const then = latencyBuckets(before.metrics);
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const total = (now.get(Infinity) || 0) - (then.get(Infinity) || 0);
  if (total <= 0) return null;
  for (const bound of bounds) {
    if ((now.get(bound) || 0) - (then.get(bound) || 0) >= 0.99 * total) return bound;
  }
  return Infinity;
}

function sparkline(values) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? 120 / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(22 - (v / max) * 20).toFixed(1)}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  return svg;
}

// ---- views -------------------------------------------------------------------------

async function overview() {
  const health = await api("GET", "/health").catch((e) => (e.problem && e.problem.components ? e.problem : null));
  let metrics = null;
  let metricsNote = null;
  try {
    metrics = parseMetrics(await api("GET", "/metrics"));
  } catch (error) {
    metricsNote = error.problem && error.problem.status === 403
      ? "Metrics need an admin key: rates, queues and breakers are not shown."
      : `Metrics could not be read: ${error.message}`;
  }
  if (metrics) {
    state.samples.push({ at: Date.now(), metrics });
    if (state.samples.length > HISTORY) state.samples.shift();
  }
  const view = [h("h2", {}, "Overview")];
  if (health) {
    view.push(h("p", {}, "System: ", word(health.status), ` (checked ${when(health.timestamp)})`));
  }
  if (metricsNote) view.push(h("p", {}, metricsNote));
  if (metrics) {
    const first = state.samples[0];
    const last = state.samples[state.samples.length - 1];
    const seconds = (last.at - first.at) / 1000;
    const rate = seconds > 0 ? (placements(last.metrics) - placements(first.metrics)) / seconds : null;
    const p99 = state.samples.length > 1 ? p99Between(first, last) : null;
    const orders = STATUSES.map((status) => {
      const series = state.samples.map((s) => sum(pick(s.metrics, "aggregator_orders", { status })));
      return h("tr", {}, h("th", { scope: "row" }, word(status)),
        h("td", { class: "num", "data-status": status }, series[series.length - 1]),
        h("td", {}, sparkline(series)));
    });
    view.push(h("div", { class: "cards" },
      h("div", { class: "card" }, h("h3", {}, "Placements"),
        h("p", { class: "big", id: "placement-rate" }, rate === null ? "…" : `${rate.toFixed(1)}/s`),
        h("p", {}, `p99 ${p99 === null ? "…" : p99 === Infinity ? "over 10 s" : `≤ ${p99 * 1000} ms`}`,
          ` over the last ${Math.round(seconds)} s`)),
      h("div", { class: "card" }, h("h3", {}, "Outbox"),
        h("p", { class: "big" }, sum(pick(metrics, "aggregator_outbox_messages"))),
        h("p", {}, `oldest waited ${sum(pick(metrics, "aggregator_outbox_oldest_age_seconds")).toFixed(1)} s`)),
      h("div", { class: "card" }, h("h3", {}, "Cancellations at vendors"),
        h("p", { class: "big", id: "cancellations-pending" },
          sum(pick(metrics, "aggregator_vendor_cancellations_pending"))),
        h("p", {}, `pending; the oldest for ${sum(pick(metrics, "aggregator_vendor_cancellations_oldest_age_seconds")).toFixed(0)} s`,
          ` (${sum(pick(metrics, "aggregator_vendor_cancellations_total", { outcome: "refused" }))} refusals asked again)`))));
    view.push(h("h3", {}, "Orders by status"),
      table("Orders by status", ["Status", { text: "Orders", num: true }, "Last minutes"], orders));
    const queues = pick(metrics, "aggregator_queue_messages").map((s) =>
      h("tr", {}, h("th", { scope: "row" }, s.labels.queue), h("td", { class: "num" }, s.value)));
    view.push(h("h3", {}, "Queues and dead letters"),
      table("Queue depths", ["Queue", { text: "Waiting", num: true }], queues));
  }
  if (health && health.components) {
    const breakers = {};
    for (const s of metrics ? pick(metrics, "aggregator_vendor_breaker_state") : []) {
      breakers[s.labels.vendor] = ["closed", "half-open", "open"][s.value] || "?";
    }
    // A vendor's rows are fresh while its last good sync is within the staleness
    // limit; the first page of products says so for every vendor that sells them.
    const fresh = {};
    const products = await api("GET", "/api/products?limit=20").catch(() => null);
    for (const product of products ? products.data.products : []) {
      for (const row of product.vendors) fresh[row.vendor] = fresh[row.vendor] || row.fresh;
    }
    const ages = {};
    for (const s of metrics ? pick(metrics, "aggregator_vendor_sync_age_seconds") : []) {
      ages[s.labels.vendor] = s.value;
    }
    const rows = (health.components.vendors || []).map((v) =>
      h("tr", { "data-vendor": v.id },
        h("th", { scope: "row" }, v.id),
        h("td", { class: "vendor-health" }, word(v.status)),
        h("td", {}, breakers[v.id] ? word(breakers[v.id]) : "—"),
        h("td", { class: "num" }, ages[v.id] === undefined ? "—" : `${ages[v.id].toFixed(1)} s`),
        h("td", {}, when(v.lastGoodSync)),
        h("td", { class: "vendor-freshness" },
          fresh[v.id] === undefined ? "—" : fresh[v.id] ? "fresh" : word("stale"))));
    view.push(h("h3", {}, "Vendors"),
      table("Vendors", ["Vendor", "Health", "Breaker", { text: "Sync age", num: true }, "Last good sync",
        "Freshness"], rows));
  }
  return view;
}

function params() {
  const query = state.route.split("?")[1] || "";
  return new URLSearchParams(query);
}

async function orders() {
  const query = params();
  const status = query.get("status") || "";
  const page = Number(query.get("page") || "1");
  const list = await api("GET", `/api/orders?limit=20&page=${page}${status ? `&status=${status}` : ""}`);
  const { orders: items, pagination } = list.data;
  const filter = h("form", { class: "inline", onsubmit: (event) => {
    event.preventDefault();
    const chosen = event.target.elements.status.value;
    location.hash = `#/orders?page=1${chosen ? `&status=${chosen}` : ""}`;
  } },
  h("div", {}, h("label", { for: "status-filter" }, "Status"),
    h("select", { id: "status-filter", name: "status" },
      h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)))),
  h("button", { type: "submit" }, "Show"));
  const rows = items.map((o) => h("tr", { "data-order": o.id },
    h("td", {}, h("a", { href: `#/order/${o.id}` }, o.orderNumber || o.id)),
    h("td", { class: "order-status" }, word(o.status)),
    h("td", {}, o.customerId),
    h("td", { class: "num" }, o.total ? `${o.total.amount} ${o.total.currency}` : "—"),
    h("td", {}, new Date(o.createdAt).toLocaleString())));
  const pager = h("p", {},
    page > 1 ? h("a", { href: `#/orders?page=${page - 1}${status ? `&status=${status}` : ""}` }, "Previous") : null,
    ` Page ${pagination.page} of ${Math.max(1, pagination.pages)} (${pagination.total} orders) `,
    page < pagination.pages ? h("a", { href: `#/orders?page=${page + 1}${status ? `&status=${status}` : ""}` }, "Next") : null);
  return [h("h2", {}, "Orders"), filter,
    table("Orders", ["Order", "Status", "Customer", { text: "Total", num: true }, "Placed"], rows), pager];
}

async function order(id) {
  const { order: o } = (await api("GET", `/api/orders/${encodeURIComponent(id)}`)).data;
  const lines = o.items.map((line) => h("tr", {},
    h("td", {}, line.item), h("td", { class: "num" }, line.quantity),
    h("td", {}, line.allocations.map((a) =>
      h("div", {}, `${a.quantity} × ${a.sku} at ${a.vendor} (${a.unitPrice.amount} ${a.unitPrice.currency})`)))));
  const placed = o.vendorPlacements.map((p) => h("tr", {},
    h("td", {}, p.vendor), h("td", {}, p.vendorOrderId), h("td", {}, new Date(p.confirmedAt).toLocaleString())));
  const events = o.events.map((e) => h("li", {},
    h("time", { datetime: e.at }, new Date(e.at).toLocaleString()), " ",
    e.from ? `${e.from} → ` : "", word(e.to), e.reason ? `: ${e.reason}` : ""));
  const cancel = h("form", { class: "inline", id: "cancel-form", onsubmit: async (event) => {
    event.preventDefault();
    const reason = event.target.elements.reason.value.trim();
    await act(async () => {
      await api("POST", `/api/orders/${encodeURIComponent(o.id)}/cancel`, reason ? { reason } : {});
      say(`Order ${o.orderNumber || o.id} cancelled.`);
    });
  } },
  h("div", {}, h("label", { for: "cancel-reason" }, "Reason"),
    h("input", { id: "cancel-reason", name: "reason", maxlength: 500, size: 40 })),
  h("button", { type: "submit", class: "danger" }, "Cancel order"));
  return [
    h("h2", {}, `Order ${o.orderNumber || ""}`),
    h("p", {}, "Status: ", h("span", { id: "order-status" }, word(o.status)),
      o.failureReason ? ` (${o.failureReason})` : "", ` · version ${o.version} · customer ${o.customerId}`),
    h("p", {}, `Id ${o.id} · total ${o.total ? `${o.total.amount} ${o.total.currency}` : "—"}`),
    h("h3", {}, "Lines"), table("Lines", ["Item", { text: "Units", num: true }, "Allocations"], lines),
    h("details", { id: "vendor-orders" }, h("summary", {}, `Vendor orders (${placed.length})`),
      table("Vendor orders", ["Vendor", "Vendor order", "Confirmed"], placed)),
    h("details", { id: "timeline" }, h("summary", {}, `Timeline (${events.length} events)`),
      h("ol", {}, events)),
    ["pending", "reserved", "confirmed"].includes(o.status) ? [h("h3", {}, "Cancel"), cancel] : null,
  ];
}

async function stock() {
  const page = Number(params().get("page") || "1");
  const list = await api("GET", `/api/products?limit=20&page=${page}`);
  const { products, pagination } = list.data;
  const rows = products.flatMap((p) => p.vendors.map((v, i) => h("tr", {},
    i === 0 ? h("th", { scope: "row", rowspan: p.vendors.length }, p.productId) : null,
    i === 0 ? h("td", { class: "num", rowspan: p.vendors.length }, p.available) : null,
    h("td", {}, v.vendor), h("td", {}, v.sku),
    h("td", { class: "num" }, v.reported), h("td", { class: "num" }, v.reserved),
    h("td", { class: "num" }, v.confirmedNotYetReported), h("td", { class: "num" }, v.sellable),
    h("td", {}, new Date(v.asOf).toLocaleString()), h("td", {}, v.fresh ? "fresh" : word("stale")))));
  const pager = h("p", {},
    page > 1 ? h("a", { href: `#/stock?page=${page - 1}` }, "Previous") : null,
    ` Page ${pagination.page} of ${Math.max(1, pagination.pages)} `,
    page < pagination.pages ? h("a", { href: `#/stock?page=${page + 1}` }, "Next") : null);
  return [h("h2", {}, "Stock"),
    table("Stock by product and vendor", ["Product", { text: "Available", num: true }, "Vendor", "SKU",
      { text: "Reported", num: true }, { text: "Reserved", num: true },
      { text: "Confirmed, not yet reported", num: true }, { text: "Sellable", num: true }, "As of", "Freshness"], rows),
    pager];
}

async function syncAndWatch(vendor) {
  const before = (await api("GET", "/api/vendors")).data.vendors;
  const queued = (await api("POST", "/api/ops/stock-sync", vendor ? { vendor } : {})).data.queued;
  say(`Sync queued for ${queued.join(", ")}; waiting for it to complete…`);
  const started = Date.now();
  while (Date.now() - started < 30000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = (await api("GET", "/api/vendors")).data.vendors;
    const outcomes = queued.map((id) => {
      const was = before.find((v) => v.id === id) || {};
      const is = now.find((v) => v.id === id) || {};
      if (is.lastGoodSync && is.lastGoodSync !== was.lastGoodSync) return `${id} synced`;
      if (is.consecutiveFailures !== was.consecutiveFailures) return `${id} failed (${is.lastError || "no reason given"})`;
      return null;
    });
    if (outcomes.every(Boolean)) {
      say(`Sync done: ${outcomes.join("; ")}.`);
      return;
    }
  }
  say(`Sync of ${queued.join(", ")} queued but not completed within 30 s.`);
}

async function vendors() {
  const list = (await api("GET", "/api/vendors")).data.vendors;
  const rows = list.map((v) => h("tr", { "data-vendor": v.id },
    h("th", { scope: "row" }, v.id), h("td", { class: "vendor-health" }, word(v.health)),
    h("td", {}, when(v.lastGoodSync)), h("td", { class: "num" }, v.consecutiveFailures),
    h("td", {}, v.lastError || "—"),
    h("td", {}, h("button", { type: "button", onclick: () => act(() => syncAndWatch(v.id)) }, `Sync ${v.id}`))));
  return [h("h2", {}, "Vendors"),
    h("p", {}, h("button", { type: "button", id: "sync-all", onclick: () => act(() => syncAndWatch(null)) },
      "Sync every vendor")),
    table("Vendors", ["Vendor", "Health", "Last good sync", { text: "Failures in a row", num: true },
      "Last error", "Sync"], rows)];
}

async function deadLetters() {
  const queue = QUEUES.includes(params().get("queue")) ? params().get("queue") : "order_queue";
  const list = (await api("GET", `/api/ops/dlq/${queue}?limit=100`)).data;
  const replay = (messageId) => act(async () => {
    const moved = (await api("POST", `/api/ops/dlq/${queue}/replay`, messageId ? { messageId } : {})).data;
    say(`Replayed ${moved.replayed} message(s) to ${queue}.`);
  });
  const rows = list.deadLetters.map((d) => h("tr", { "data-message": d.messageId },
    h("td", {}, d.messageId), h("td", { class: "num" }, d.attempts), h("td", {}, d.reason),
    h("td", {}, new Date(d.deadAt).toLocaleString()),
    h("td", {}, h("details", {}, h("summary", {}, "Message"), h("pre", {}, JSON.stringify(d.body, null, 2)))),
    h("td", {}, h("button", { type: "button", onclick: () => replay(d.messageId) }, "Replay"))));
  return [h("h2", {}, "Dead letters"),
    h("p", {}, QUEUES.map((q) => [h("a", { href: `#/dead-letters?queue=${q}`,
      "aria-current": q === queue ? "page" : null }, q), " "])),
    h("p", {}, h("button", { type: "button", id: "replay-all", onclick: () => replay(null),
      disabled: list.deadLetters.length === 0 }, `Replay all of ${queue}`)),
    table(`Dead letters of ${queue}`, ["Message", { text: "Attempts", num: true }, "Reason", "Dead since",
      "Body", "Replay"], rows)];
}

// ---- routing -----------------------------------------------------------------------

async function act(work) {
  if (state.busy) return;
  state.busy = true;
  try {
    showProblem(null);
    await work();
    await render();
  } catch (error) {
    showProblem(error.problem || { title: "Something went wrong", detail: String(error) });
  } finally {
    state.busy = false;
  }
}

function routeView() {
  const path = state.route.split("?")[0];
  if (path.startsWith("/order/")) return () => order(decodeURIComponent(path.slice(7)));
  return { "/orders": orders, "/stock": stock, "/vendors": vendors, "/dead-letters": deadLetters }[path] || overview;
}

// What the operator is doing on the page (focus, text typed, unsent choices, open
// details), taken before a redraw and given back after it, so updates never take it away.
function keepWhatTheOperatorDoes(view) {
  const active = document.activeElement;
  const focus = active && active.id && view.contains(active) ? active.id : null;
  const selection = focus && typeof active.selectionStart === "number"
    ? [active.selectionStart, active.selectionEnd] : null;
  const values = [...view.querySelectorAll("input[id], select[id], textarea[id]")]
    .map((field) => [field.id, field.value]);
  const open = [...view.querySelectorAll("details[id]")].map((d) => [d.id, d.open]);
  return () => {
    for (const [id, value] of values) {
      const field = document.getElementById(id);
      if (field && view.contains(field)) field.value = value;
    }
    for (const [id, wasOpen] of open) {
      const details = document.getElementById(id);
      if (details && view.contains(details)) details.open = wasOpen;
    }
    const again = focus && document.getElementById(focus);
    if (again && view.contains(again)) {
      again.focus();
      if (selection && typeof again.setSelectionRange === "function") again.setSelectionRange(...selection);
    }
  };
}

async function render() {
  const view = document.getElementById("view");
  const route = state.route;
  try {
    const content = await routeView()();
    // Redraws of the same page keep what the operator was doing; a new page starts fresh.
    const giveBack = view.dataset.route === route ? keepWhatTheOperatorDoes(view) : () => {};
    view.replaceChildren(...content.flat(Infinity).filter(Boolean));
    view.dataset.route = route;
    giveBack();
    view.hidden = false;
    if (!state.busy) showProblem(null);
  } catch (error) {
    showProblem(error.problem || { title: "Something went wrong", detail: String(error) });
  }
  const section = "/" + (state.route.split("?")[0].split("/")[1] || "overview");
  for (const link of document.querySelectorAll("nav a")) {
    const here = link.getAttribute("href").slice(1) === section ||
      (section === "/order" && link.getAttribute("href") === "#/orders");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function loggedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

// ---- live updates --------------------------------------------------------------------
// Pages that show orders follow the order event stream. EventSource cannot send the API
// key, so the stream is read with fetch; when it is refused (a 4xx, too many streams for
// this key) or breaks, those pages are polled like the others until it is tried again.

function showsOrders() {
  const path = state.route.split("?")[0];
  return path === "/orders" || path.startsWith("/order/");
}

function setLive(mode) {
  const badge = document.getElementById("live");
  badge.dataset.mode = mode;
  badge.textContent = { stream: "Live", polling: `Updating every ${POLL_MS / 1000} s`, off: "" }[mode];
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function redrawSoon() {
  clearTimeout(state.redraw);
  state.redraw = setTimeout(() => {
    if (state.busy) redrawSoon();
    else render();
  }, REDRAW_MS);
}

// One server-sent event (its lines without the blank line that ends it).
function onEvent(frame) {
  let name = "message";
  let id = null;
  const data = [];
  for (const line of frame.split(/\r?\n/)) {
    if (line.startsWith(":")) continue; // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (id !== null) state.lastEventId = id;
  if (name === "reset") {
    redrawSoon();
    return;
  }
  if (name !== "order") return;
  let event;
  try {
    event = JSON.parse(data.join("\n"));
  } catch {
    return;
  }
  const path = state.route.split("?")[0];
  const shown = path.startsWith("/order/") ? decodeURIComponent(path.slice(7)) : null;
  if (shown === null || shown === event.orderId) redrawSoon();
}

async function startStream() {
  stopStream();
  if (!loggedIn() || !showsOrders()) return;
  const controller = new AbortController();
  state.stream = controller;
  const refused = () => {
    if (state.stream !== controller) return;
    state.stream = null;
    state.streamRetryAt = Date.now() + STREAM_RETRY_MS;
    setLive("polling");
  };
  const headers = { Accept: "text/event-stream" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  let response;
  try {
    response = await fetch("/api/events", { headers, signal: controller.signal, cache: "no-store" });
  } catch {
    refused();
    return;
  }
  if (!response.ok || !response.body) {
    refused();
    return;
  }
  if (state.stream !== controller) return;
  setLive("stream");
  redrawSoon(); // what changed while the stream was being opened
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let end = buffer.search(/\r?\n\r?\n/); end >= 0; end = buffer.search(/\r?\n\r?\n/)) {
        onEvent(buffer.slice(0, end));
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      }
    }
  } catch {
    // aborted (the page changed) or broken (the API went away)
  }
  refused();
}

// A new key (or none) starts from the stream's present, not from another key's position.
function forgetTheStream() {
  stopStream();
  state.lastEventId = null;
  state.streamRetryAt = 0;
}

// The stream for pages that show orders, none elsewhere.
function followTheRoute() {
  if (loggedIn() && showsOrders()) {
    if (!state.stream && Date.now() >= state.streamRetryAt) startStream();
    else if (!state.stream) setLive("polling");
  } else {
    stopStream();
    setLive("off");
  }
}

function show() {
  state.route = location.hash.replace(/^#/, "") || "/overview";
  const inside = loggedIn();
  document.getElementById("login").hidden = inside;
  document.getElementById("nav").hidden = !inside;
  document.getElementById("view").hidden = !inside;
  followTheRoute();
  if (inside) render();
}

function poll() {
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (!loggedIn() || document.hidden || state.busy) return;
    if (showsOrders()) {
      if (state.stream) return; // the stream redraws these pages when orders change
      followTheRoute(); // tries the stream again once its retry time has come
    }
    // Forms being filled in are not redrawn under the operator.
    const typing = document.activeElement && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
    if (!typing) render();
  }, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    forgetTheStream();
    state.samples = [];
    say("");
    location.hash = "#/overview";
    show();
  });
  document.getElementById("no-key").addEventListener("click", () => {
    sessionStorage.setItem(KEY, "");
    forgetTheStream();
    state.samples = [];
    say("");
    location.hash = "#/overview";
    show();
  });
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    forgetTheStream();
    state.samples = [];
    showProblem(null);
    say("Logged out.");
    show();
  });
  window.addEventListener("hashchange", show);
  show();
  poll();
});
