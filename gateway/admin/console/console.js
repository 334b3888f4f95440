// The gateway console: reads the admin API every few seconds and draws it.
// No framework and no build step; charts are small hand-drawn SVG line charts.
"use strict";

const KEY = "gateway-admin-key";  // sessionStorage: gone when the tab closes
const REFRESH_MS = 5000;
const COLORS = ["#2f6fdb", "#d98a00", "#2e8b57", "#c8332b", "#7b4fd6", "#0f8b8d", "#a0522d"];
const $ = (id) => document.getElementById(id);
let timer = null;
let traceUrl = null;

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const headers = { authorization: "Bearer " + sessionStorage.getItem(KEY) };
  if (options.body) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  const body = await response.json();
  if (response.status === 401 || response.status === 403) {
    logout(body.error ? body.error.message : "not allowed");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

// --- formatting ---------------------------------------------------------------------
const usd = (v) => v === null || v === undefined ? "-" : v >= 1 || v === 0 ? "$" + v.toFixed(2) : "$" + v.toFixed(4);
const int = (v) => (v || 0).toLocaleString("en-US");
const secs = (v) => v === null || v === undefined ? "-" : v < 1 ? Math.round(v * 1000) + " ms" : v.toFixed(2) + " s";
const pct = (v) => (v * 100).toFixed(1) + "%";
const time = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
const when = (ts) => new Date(ts * 1000).toLocaleString([], { hour12: false });

// --- login --------------------------------------------------------------------------
function logout(message) {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("admin-key").value.trim());
  $("admin-key").value = "";
  try {
    await start();
  } catch (error) {
    if (error.message !== "unauthorized") $("login-error").textContent = error.message;
  }
}

async function start() {
  const status = await api("/admin/status");
  traceUrl = status.trace_url;
  $("scope").textContent = `pid ${status.pid} · ${status.storage} · spend from ${status.spend_scope}`;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

async function refresh() {
  const range = document.querySelector("input[name=range]:checked").value;
  const results = await Promise.allSettled([
    loadTraffic(range),
    api("/admin/budgets").then(drawBudgets),
    api("/admin/calls?limit=100").then(drawCalls),
    api("/admin/keys").then(drawKeys),
    api("/admin/resilience").then(drawResilience),
    loadSpend(),
  ]);
  const failed = results.find((r) => r.status === "rejected");
  $("updated").textContent = failed ? "update failed: " + failed.reason.message : "updated " + time(Date.now() / 1000);
}

// --- traffic ------------------------------------------------------------------------
const SPANS = { "15m": "last 15 min", hour: "last hour", day: "last day" };
const total = (points, f) => points.reduce((sum, p) => sum + f(p), 0);
const modelSum = (p, f) => Object.values(p.models).reduce((sum, m) => sum + f(m), 0);

async function loadTraffic(range) {
  const shown = await api("/admin/traffic?range=" + range);
  const fine = range === "15m" ? shown : await api("/admin/traffic?range=15m");
  drawTiles(fine.points, shown);
  drawCharts(shown);
}

function drawTiles(fine, shown) {
  const lastMinute = fine.slice(-6);
  const busy = fine.filter((p) => p.requests);
  const latest = busy.length ? busy[busy.length - 1] : null;
  const streamed = fine.filter((p) => p.first_chunk_p50_s !== null);
  const firstChunk = streamed.length ? streamed[streamed.length - 1] : null;
  const requests = total(fine, (p) => p.requests);
  const span = SPANS[shown.range];
  const tiles = [
    [(total(lastMinute, (p) => p.requests) / 60).toFixed(2), "requests/s, last minute"],
    [int(requests), "requests, last 15 min"],
    [requests ? pct(total(fine, (p) => p.errors) / requests) : "-", "error ratio, last 15 min"],
    [secs(latest && latest.latency_p50_s), "p50 latency (latest 10 s)"],
    [secs(latest && latest.latency_p95_s), "p95 latency (latest 10 s)"],
    [secs(firstChunk && firstChunk.first_chunk_p50_s), "p50 first chunk (latest)"],
    [int(total(shown.points, (p) => modelSum(p, (m) => m.input_tokens + m.output_tokens))), "tokens, " + span],
    [usd(total(shown.points, (p) => modelSum(p, (m) => m.cost_usd))), "cost, " + span],
  ];
  $("tiles").replaceChildren(...tiles.map(([v, l]) => el("div", { class: "tile" },
    el("div", { class: "v", text: v }), el("div", { class: "l", text: l }))));
}

function drawCharts(traffic) {
  const points = traffic.points;
  const models = [...new Set(points.flatMap((p) => Object.keys(p.models)))].sort();
  const perModel = (f) => models.map((m) => ({ name: m, values: points.map((p) => p.models[m] ? f(p.models[m]) : 0) }));
  const series = (name, field) => ({ name, values: points.map((p) => p[field]) });
  const xs = points.map((p) => p.ts);
  $("charts").replaceChildren(
    chart("Requests per second", xs, [series("rate", "rate_per_s")], (v) => v.toFixed(2)),
    chart("Error ratio", xs, [series("errors", "error_ratio")], pct),
    chart("Latency", xs, [series("p50", "latency_p50_s"), series("p95", "latency_p95_s")], secs),
    chart("Time to first chunk (streams)", xs, [series("p50", "first_chunk_p50_s"), series("p95", "first_chunk_p95_s")], secs),
    chart("Tokens per model (input + output)", xs, perModel((m) => m.input_tokens + m.output_tokens), int),
    chart("Cost per model", xs, perModel((m) => m.cost_usd), usd),
  );
}

function chart(title, xs, series, format) {
  const W = 300, H = 120, L = 44, B = 16, T = 6;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = Math.max(...all, 0) || 1;
  const x = (i) => L + (i * (W - L - 4)) / Math.max(1, xs.length - 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": title },
    el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }),
    el("svg:line", { class: "axis", x1: L, y1: T, x2: W, y2: T }),
    el("svg:text", { x: L - 4, y: T + 8, "text-anchor": "end", text: format(max) }),
    el("svg:text", { x: L - 4, y: H - B, "text-anchor": "end", text: format(0) }),
    el("svg:text", { x: L, y: H - 3, text: xs.length ? time(xs[0]) : "" }),
    el("svg:text", { x: W - 2, y: H - 3, "text-anchor": "end", text: xs.length ? time(xs[xs.length - 1]) : "" }));
  series.forEach((s, k) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      d += (d && s.values[i - 1] !== null ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
    });
    const color = COLORS[k % COLORS.length];
    if (d) svg.append(el("svg:path", { d, fill: "none", stroke: color, "stroke-width": 1.6,
                                       "vector-effect": "non-scaling-stroke" }));
    // Few points (the first minutes of traffic) are hard to see as a line: mark each one.
    const marked = s.values.filter((v) => v !== null).length <= 30;
    s.values.forEach((v, i) => {
      if (v !== null && (marked || ((i === 0 || s.values[i - 1] === null) && s.values[i + 1] == null))) {
        svg.append(el("svg:rect", { x: x(i) - 1.5, y: y(v) - 1.5, width: 3, height: 3, fill: color }));
      }
    });
  });
  const legend = el("div", { class: "legend" }, ...series.map((s, k) => {
    const swatch = el("i");
    swatch.style.background = COLORS[k % COLORS.length];
    return el("span", {}, swatch, s.name);
  }));
  return el("div", { class: "chart" }, el("h3", { text: title }), svg, series.length ? legend : el("div", { class: "legend", text: "no traffic yet" }));
}

// --- budgets and spend ----------------------------------------------------------------
function drawBudgets(data) {
  if (!data.budgets.length) {
    $("budgets").replaceChildren(el("p", { class: "muted", text: "No budgets. Add them under budgets: in the config, or give a key a budget." }));
    return;
  }
  $("budgets").replaceChildren(...data.budgets.map((b) => {
    const fill = el("div", { class: b.used_pct >= 100 ? "full" : b.used_pct >= 80 ? "warn" : null });
    fill.style.width = Math.min(100, b.used_pct) + "%";
    const what = b.target ? `${b.scope} ${b.target}` : "all traffic";
    return el("div", { class: "budget" },
      el("div", { class: "top" }, el("strong", { text: b.name }), el("span", { text: `${usd(b.spent_usd)} of ${usd(b.limit_usd)} (${b.used_pct.toFixed(1)}%)` })),
      el("div", { class: "bar", title: `${b.used_pct}% used` }, fill),
      el("div", { class: "sub", text: `${what}, per ${b.window}, ${b.action}; reserved in flight ${usd(b.reserved_usd)}; resets ${when(b.resets_at)}` }));
  }));
}

async function loadSpend() {
  let by = $("spend-by").value;
  $("spend-tag").hidden = by !== "tag";
  if (by === "tag") {
    const name = $("spend-tag").value.trim();
    if (!name) return $("spend").replaceChildren(el("tr", {}, el("td", { class: "muted", text: "type a tag name" })));
    by = "tag:" + name;
  }
  const report = await api(`/admin/spend?by=${encodeURIComponent(by)}&window=${$("spend-window").value}`);
  const head = el("tr", {}, ...[by, "calls", "input tok", "output tok", "cost", "budget"].map((h, i) => el("th", { class: i ? "n" : null, text: h })));
  const line = (r, strong) => el("tr", {},
    el(strong ? "th" : "td", { text: r.group }),
    el("td", { class: "n", text: int(r.calls) }), el("td", { class: "n", text: int(r.input_tokens) }),
    el("td", { class: "n", text: int(r.output_tokens) }), el("td", { class: "n", text: usd(r.cost_usd) }),
    el("td", { class: "n", text: r.budget ? `${r.budget.used_pct}% of ${usd(r.budget.limit_usd)}` : "" }));
  const rows = report.rows.map((r) => line(r, false));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "muted", text: `no spend in ${report.label}` })));
  $("spend").replaceChildren(head, ...rows, line(report.total, true));
}

// --- fallbacks and breakers -----------------------------------------------------------
function drawResilience(data) {
  const breakers = data.breakers.map((b) => el("span", { class: "pill " + b.state, title: b.provider,
                                                         text: `${b.model}: ${b.state.replace("_", "-")}` }));
  const fallbacks = data.fallbacks.map((f) => el("li", {
    text: `${f.model_requested} → ${f.model_served || "none"} (${f.reason}): ${int(f.calls)} of the recent calls` }));
  $("resilience").replaceChildren(
    el("div", {}, el("strong", { text: "Breakers: " }), ...(breakers.length ? breakers
      : [el("span", { class: "muted", text: "none yet (one per model once it is called)" })])),
    fallbacks.length ? el("ul", {}, ...fallbacks) : el("p", { class: "muted", text: "No fallbacks among the recent calls." }));
}

// --- recent calls ---------------------------------------------------------------------
function drawCalls(data) {
  const head = el("tr", {}, ...["time", "key", "team", "tags", "user", "model", "served", "in", "out", "cached", "cost", "latency", "status", "trace"]
    .map((h) => el("th", { class: ["in", "out", "cached", "cost", "latency"].includes(h) ? "n" : null, text: h })));
  const rows = data.calls.map((c) => el("tr", { class: c.status >= 400 ? "bad" : null },
    el("td", { text: time(c.ts) }), el("td", { text: c.key }), el("td", { text: c.team }),
    el("td", {}, ...Object.entries(c.tags).map(([k, v]) => el("span", { class: "tag", text: `${k}=${v}` }))),
    el("td", { text: c.user || "" }), el("td", { text: c.model_requested }),
    el("td", { text: c.model_served || "-" }),
    el("td", { class: "n", text: int(c.input_tokens) }), el("td", { class: "n", text: int(c.output_tokens) }),
    el("td", { class: "n", text: int(c.cached_tokens) }), costCell(c),
    el("td", { class: "n", text: secs(c.latency_s) }),
    el("td", { text: c.error_type ? `${c.status} ${c.error_type}` : String(c.status) }),
    el("td", {}, traceLink(c.trace_id))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "muted", text: "no calls yet" })));
  $("calls").replaceChildren(head, ...rows);
}

// A call to a model with no price has no known cost: never shown as $0.
function costCell(c) {
  if (!c.unpriced) return el("td", { class: "n", text: usd(c.cost_usd) });
  return el("td", { class: "n unpriced", title: "a model with no price: its tokens are not in the cost",
    text: c.cost_usd ? `${usd(c.cost_usd)} + unpriced` : "unpriced" });
}

function traceLink(id) {
  if (!id) return null;
  const short = id.slice(0, 8) + "…";
  if (!traceUrl) return el("span", { title: id, text: short });
  return el("a", { href: traceUrl.replace("{trace_id}", id), target: "_blank", rel: "noopener", title: id, text: short });
}

// --- keys -----------------------------------------------------------------------------
function drawKeys(data) {
  const head = el("tr", {}, ...["alias", "team", "status", "source", "budget/day", "models", "expires", ""].map((h) => el("th", { text: h })));
  const rows = data.keys.map((k) => el("tr", { class: k.status !== "active" ? "muted" : null },
    el("td", { text: k.alias }), el("td", { text: k.team }), el("td", { text: k.status }), el("td", { text: k.source }),
    el("td", { text: k.budget_usd_per_day === null ? "-" : usd(k.budget_usd_per_day) }),
    el("td", { text: k.allowed_models ? k.allowed_models.join(", ") : "all" }),
    el("td", { text: k.expires_at ? when(k.expires_at) : "-" }),
    el("td", {}, ...(k.source === "store" && k.status === "active" ? [
      el("button", { class: "small", text: "rotate", onclick: () => keyAction(k.alias, "rotate") }), " ",
      el("button", { class: "small", text: "revoke", onclick: () => keyAction(k.alias, "revoke") })] : []))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "muted", text: "no keys: the gateway runs open" })));
  $("keys").replaceChildren(head, ...rows);
}

function showSecret(created) {
  $("new-key").replaceChildren(`Key '${created.alias}' (shown once, copy it now): `, el("code", { id: "new-key-secret", text: created.key }));
  $("new-key").hidden = false;
}

async function createKey(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { alias: form.get("alias"), team: form.get("team") || "default" };
  if (form.get("budget_usd_per_day")) body.budget_usd_per_day = Number(form.get("budget_usd_per_day"));
  const models = String(form.get("allowed_models")).split(",").map((m) => m.trim()).filter(Boolean);
  if (models.length) body.allowed_models = models;
  if (form.get("expires_in_days")) body.expires_in_s = Number(form.get("expires_in_days")) * 86400;
  $("key-error").textContent = "";
  try {
    showSecret(await api("/admin/keys", { method: "POST", body: JSON.stringify(body) }));
    event.target.reset();
    await refresh();
  } catch (error) {
    $("key-error").textContent = error.message;
  }
}

async function keyAction(alias, action) {
  if (!confirm(`${action} key '${alias}'? Its current secret stops working at once.`)) return;
  try {
    const answer = await api(`/admin/keys/${encodeURIComponent(alias)}/${action}`, { method: "POST" });
    if (answer.key) showSecret(answer);
    await refresh();
  } catch (error) {
    $("key-error").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  $("key-form").addEventListener("submit", createKey);
  for (const input of document.querySelectorAll("input[name=range]")) input.addEventListener("change", refresh);
  for (const id of ["spend-by", "spend-window"]) $(id).addEventListener("change", () => loadSpend().catch(() => {}));
  $("spend-tag").addEventListener("change", () => loadSpend().catch(() => {}));
  if (sessionStorage.getItem(KEY)) start().catch(() => {});
  else logout("");
});
