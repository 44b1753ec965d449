// The settings window: overview, routing (matrix, thresholds, preview), providers, queue.
import { api, autostart, follow, hasAccess } from "./api.js";

const $ = (id) => document.getElementById(id);
const STATES = ["normal", "caution", "warning", "critical"];
const CLASSES = ["simple", "medium", "complex"];
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "");

// ---------- tabs ----------
const tabs = ["overview", "routing", "providers", "queue"];
function show(name) {
  for (const tab of tabs) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`page-${tab}`).hidden = tab !== name;
  }
  location.hash = name;
  refresh();
}
for (const tab of tabs) $(`tab-${tab}`).addEventListener("click", () => show(tab));

function banner(text) {
  $("banner").textContent = text || "";
  $("banner").hidden = !text;
}

// ---------- overview ----------
async function loadOverview() {
  const health = (await api("GET", "/health")).body;
  const q = health.quota;
  $("gauge").dataset.state = q.state;
  $("quota-percent").textContent = q.percent == null ? "–" : `${Math.round(q.percent)}%`;
  $("quota-state").textContent = q.state;
  $("quota-reason").textContent = q.reason;
  $("quota-burn").textContent = q.burn_rate == null ? "" :
    `Burning ${q.burn_rate.toFixed(1)}%/h` + (q.projected_exhaustion ?
      `; at this pace it runs out at ${time(q.projected_exhaustion)}${q.exhausts_before_reset ? " — before its reset" : ""}` : "");
  // Every window, shared and scoped: what is close, what is capped, when each resets.
  $("windows").replaceChildren(...(q.windows || []).map((w) => el("tr", { className: w.status === "rejected" ? "bad" : "" },
    el("th", { textContent: w.label }),
    el("td", { textContent: `${Math.round(w.percent)}%` }),
    el("td", { className: "muted", textContent: w.resets_at ? `resets ${time(w.resets_at)}` : "" }),
    el("td", { className: "muted", textContent: w.burn_rate == null ? "" : `${w.burn_rate.toFixed(1)}%/h` }))));
  const notes = (q.caps || []).map((c) => `${c.reason}: its work goes to the next target.`);
  if (q.overage?.in_use) notes.push(q.overage.allowed_by_config ? "Extra usage (billed) is being spent." : "Extra usage would be billed: routing as critical.");
  $("quota-caps").textContent = notes.join(" ");
  renderModes(health.mode);
  await loadToggles();
  const history = await api("GET", "/api/quota/history?hours=24");
  if (history.status === 200) renderChart(history.body.readings);
  const log = await api("GET", "/api/requests?limit=50");
  if (log.status === 200) {
    $("requests").replaceChildren(...log.body.requests.map((r) => el("tr", {},
      el("td", { textContent: time(r.started_at) }),
      el("td", { textContent: r.complexity || "" }),
      el("td", { textContent: r.target || "" }),
      el("td", { textContent: r.status ?? r.outcome, className: r.status >= 400 ? "bad" : "" }),
      el("td", { textContent: `${Math.round(r.latency_ms)} ms` }),
      el("td", { textContent: `${r.input_tokens ?? "–"} / ${r.output_tokens ?? "–"}` }))));
  }
}

async function loadToggles() {
  const answer = await api("GET", "/api/config");
  const notifications = answer.body?.config?.notifications || {};
  for (const kind of ["quota", "providers", "queue"]) $(`n-${kind}`).checked = notifications[kind] !== false;
  const enabled = await autostart();
  $("autostart-row").hidden = enabled === null;
  if (enabled !== null) $("autostart").checked = enabled;
}

for (const kind of ["quota", "providers", "queue"]) {
  $(`n-${kind}`).addEventListener("change", async (e) => {
    const answer = await api("PATCH", "/api/config", { set: { [`notifications.${kind}`]: e.target.checked } });
    if (answer.status !== 200) banner(answer.body?.problems?.[0]?.reason || answer.body?.error?.message || "not saved");
  });
}
$("autostart").addEventListener("change", async (e) => {
  $("autostart").checked = await autostart(e.target.checked);
});

function renderModes(current) {
  // Built once; later only the choice changes (a control must not be replaced under a click).
  const existing = $("modes").querySelectorAll("input");
  if (existing.length > 0) {
    for (const input of existing) input.checked = input.value === current;
    return;
  }
  const labels = { auto: "Automatic", "claude-only": "Claude only", "local-only": "Local only", paused: "Paused" };
  $("modes").replaceChildren(...Object.entries(labels).map(([mode, label]) => {
    const input = el("input", { type: "radio", name: "mode", value: mode, checked: mode === current });
    input.addEventListener("change", async () => {
      const answer = await api("PUT", "/api/mode", { mode });
      if (answer.status !== 200) banner(answer.body?.error?.message || "cannot change the mode");
    });
    return el("label", { className: "mode" }, input, ` ${label}`);
  }));
}

function renderChart(readings) {
  const svg = $("chart");
  const now = Date.now(), span = 24 * 3600 * 1000;
  const x = (t) => ((new Date(t).getTime() - (now - span)) / span) * 600;
  const y = (p) => 160 - Math.min(p, 100) * 1.6;
  const lines = [50, 75, 90].map((p) => `<line x1="0" x2="600" y1="${y(p)}" y2="${y(p)}" class="grid"/>`);
  const byWindow = {};
  for (const r of readings) (byWindow[r.window] ||= []).push([x(r.at).toFixed(1), y(r.percent).toFixed(1), r.percent]);
  const paths = Object.entries(byWindow).map(([w, pts]) =>
    `<polyline class="line w-${w}" points="${pts.map((p) => `${p[0]},${p[1]}`).join(" ")}"><title>${w}</title></polyline>` +
    // The latest reading of each window as a dot, so even one reading shows.
    `<circle class="dot w-${w}" cx="${pts[pts.length - 1][0]}" cy="${pts[pts.length - 1][1]}" r="4"><title>${w}: ${pts[pts.length - 1][2]}%</title></circle>`);
  svg.innerHTML = lines.join("") + paths.join("");
}

// ---------- routing ----------
let edit = { set: {} };
let matrix = {};
let fallback = [];
let targets = [];

async function loadRouting() {
  const answer = await api("GET", "/api/config");
  if (answer.status !== 200) return banner(answer.body?.error?.message || "cannot read the config");
  const config = answer.body.config;
  matrix = Object.fromEntries(STATES.map((s) => [s, Object.fromEntries(CLASSES.map((c) => [c, [...config.routing.matrix[s][c]]]))]));
  fallback = [...config.routing.fallback];
  for (const k of ["caution", "warning", "critical", "hysteresis"]) $(`t-${k}`).value = config.quota.thresholds[k];
  const health = (await api("GET", "/health")).body;
  targets = ["queue"];
  for (const p of health.providers) targets.push(p.name);
  edit = { set: {} };
  $("save").disabled = true;
  $("problems").replaceChildren();
  renderMatrix();
}

function renderCell(list, key) {
  const box = el("div", { className: "cell" });
  list.forEach((target, i) => {
    const chip = el("span", { className: "chip", draggable: true, tabIndex: 0, title: "Drag to reorder; Alt+arrows move it" },
      el("span", { textContent: target }));
    const remove = el("button", { className: "x", textContent: "×", title: `Remove ${target}`, ariaLabel: `Remove ${target}` });
    remove.addEventListener("click", () => change(key, list.filter((_, j) => j !== i)));
    chip.append(remove);
    chip.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", String(i)));
    chip.addEventListener("dragover", (e) => e.preventDefault());
    chip.addEventListener("drop", (e) => {
      e.preventDefault();
      const from = Number(e.dataTransfer.getData("text/plain"));
      const next = [...list];
      next.splice(i, 0, ...next.splice(from, 1));
      change(key, next);
    });
    chip.addEventListener("keydown", (e) => {
      if (!e.altKey || !["ArrowLeft", "ArrowRight"].includes(e.key)) return;
      const to = i + (e.key === "ArrowLeft" ? -1 : 1);
      if (to < 0 || to >= list.length) return;
      const next = [...list];
      [next[i], next[to]] = [next[to], next[i]];
      change(key, next);
    });
    box.append(chip);
  });
  const add = el("input", { className: "add", placeholder: "+ target", ariaLabel: `Add a target to ${key}` });
  add.setAttribute("list", "target-options");
  add.addEventListener("change", () => {
    if (add.value.trim()) change(key, [...list, add.value.trim()]);
  });
  box.append(add);
  box.dataset.key = key;
  return box;
}

function renderMatrix() {
  let options = document.getElementById("target-options");
  if (!options) document.body.append(options = el("datalist", { id: "target-options" }));
  options.replaceChildren(...targets.map((t) => el("option", { value: t })));
  $("matrix").replaceChildren(...STATES.map((state) => el("tr", {},
    el("th", { textContent: state, className: `state-${state}` }),
    ...CLASSES.map((cls) => el("td", {}, renderCell(matrix[state][cls], `routing.matrix.${state}.${cls}`))))));
  $("fallback").replaceChildren(renderCell(fallback, "routing.fallback"));
}

async function change(key, value) {
  if (key.startsWith("routing.matrix.")) {
    const [, , state, cls] = key.split(".");
    matrix[state][cls] = value;
  } else if (key === "routing.fallback") {
    fallback = value;
  }
  edit.set[key] = value;
  renderMatrix();
  await validate();
}

async function validate() {
  const answer = await api("PATCH", "/api/config?dry_run=true", edit);
  const problems = answer.body?.problems || [];
  $("problems").replaceChildren(...problems.map((p) => el("li", { textContent: `${p.key}: ${p.value} ${p.reason}` })));
  document.querySelectorAll(".cell").forEach((c) => c.classList.toggle("invalid", problems.some((p) => p.key.startsWith(c.dataset.key))));
  $("save").disabled = !(answer.status === 200 && answer.body.ok);
  $("saved").textContent = "";
}

for (const k of ["caution", "warning", "critical", "hysteresis"]) {
  $(`t-${k}`).addEventListener("input", async () => {
    edit.set[`quota.thresholds.${k}`] = Number($(`t-${k}`).value);
    await validate();
  });
}

$("save").addEventListener("click", async () => {
  const answer = await api("PATCH", "/api/config", edit);
  if (answer.status === 200) {
    $("saved").textContent = answer.body.restart_needed ? "Saved — restart to apply the new address." : "Saved and applied.";
    edit = { set: {} };
    $("save").disabled = true;
  } else {
    const problems = answer.body?.problems || [{ key: "", value: "", reason: answer.body?.error?.message || "not saved" }];
    $("problems").replaceChildren(...problems.map((p) => el("li", { textContent: `${p.key}: ${p.value} ${p.reason}` })));
  }
});

$("preview").addEventListener("click", async () => {
  let body;
  try { body = JSON.parse($("preview-body").value); } catch (e) { $("preview-result").textContent = `Not JSON: ${e.message}`; return; }
  const cls = $("preview-class").value;
  const answer = await api("POST", `/api/route/preview${cls ? `?complexity=${cls}` : ""}`, body);
  if (answer.status !== 200) { $("preview-result").textContent = answer.body?.error?.message || "no decision"; return; }
  const d = answer.body.decision;
  $("preview-result").textContent = [
    `Class: ${d.complexity} (${d.classification})`,
    `Quota: ${d.quota_state}, routed by the ${d.level} row, mode ${d.mode}`,
    `Chain: ${d.chain.map((c) => c.target + (c.model ? ` → ${c.model}` : "")).join(", ") || "nothing"}`,
    ...d.skipped.map((s) => `Skipped ${s.target}: ${s.why}`),
  ].join("\n");
});

// ---------- providers ----------
async function loadProviders() {
  const health = (await api("GET", "/health")).body;
  const answer = await api("GET", "/api/config");
  const configured = answer.body?.config?.providers || [];
  $("providers").replaceChildren(...health.providers.map((p) => {
    const credentials = configured.find((c) => c.name === p.name)?.credentials;
    const test = el("button", { textContent: "Test" });
    test.addEventListener("click", async () => {
      test.disabled = true; test.textContent = "Testing…";
      const q = await api("POST", `/api/providers/${p.name}/qualify`);
      test.disabled = false; test.textContent = "Test";
      if (q.status !== 200) banner(q.body?.error?.message || "test failed");
      loadProviders();
    });
    const remove = el("button", { textContent: "Remove", className: "danger" });
    remove.addEventListener("click", async () => {
      if (!confirm(`Remove ${p.name}?`)) return;
      const r = await api("PATCH", "/api/config", { remove_providers: [p.name] });
      if (r.status !== 200) banner((r.body?.problems || []).map((x) => `${x.key}: ${x.reason}`).join("; ") || r.body?.error?.message);
      loadProviders();
    });
    const q = p.qualification;
    return el("tr", {},
      el("td", {}, el("strong", { textContent: p.name }), credentials?.env ? el("div", { className: "muted", textContent: credentials.set ? `key set via ${credentials.env}` : `no key: set ${credentials.env}` }) : ""),
      el("td", { textContent: p.kind }),
      el("td", { textContent: p.base_url, className: "mono" }),
      el("td", { className: `health-${p.health}`, textContent: p.health + (p.breaker !== "closed" ? ` (breaker ${p.breaker})` : "") + (p.loading ? ` · loading ${p.loading.model} (${p.loading.context_length} tokens)` : ""), title: p.last_error || "" }),
      el("td", { textContent: !p.model || p.model === "auto" ? (p.models?.loaded ? `${p.models.loaded} (loaded)` : p.model || "") : p.model }),
      el("td", { textContent: p.context_window ?? "" }),
      el("td", { textContent: q ? `${q.verdict}` : "not tested", title: q?.reason || "" }),
      el("td", {}, test, remove));
  }));
  const stats = (await api("GET", "/api/stats")).body || {};
  const judged = (stats.live || []).filter((row) => row.recent_judged > 0 || row.quality_demotion);
  $("learnt").replaceChildren(...(judged.length ? judged.map((row) => el("tr", {},
    el("td", { textContent: row.complexity }),
    el("td", { textContent: row.provider }),
    el("td", { textContent: row.recent_judged }),
    el("td", { textContent: row.recent_flawed }),
    el("td", { textContent: row.quality_demotion || "taking this work", className: row.quality_demotion ? "health-unhealthy" : "" }),
  )) : [el("tr", {}, el("td", { colSpan: 5, className: "muted", textContent: "No answer from a local or fallback model judged yet." }))]));
}

$("provider-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const provider = {};
  for (const [k, v] of form.entries()) if (v !== "") provider[k] = k === "context_window" ? Number(v) : v;
  const answer = await api("PATCH", "/api/config", { add_providers: [provider] });
  if (answer.status === 200) { e.target.reset(); banner(""); loadProviders(); }
  else banner((answer.body?.problems || []).map((p) => `${p.key}: ${p.value} ${p.reason}`).join("; ") || answer.body?.error?.message);
});

// ---------- queue ----------
async function loadQueue() {
  const answer = await api("GET", "/v1/queue?limit=100");
  const jobs = answer.body?.jobs || [];
  const health = (await api("GET", "/health")).body;
  $("waiting").textContent = `${health.queue_waiting ?? 0} interactive request(s) waiting.`;
  $("jobs").replaceChildren(...jobs.map((j) => {
    const cancel = el("button", { textContent: "Cancel", disabled: !["queued", "running"].includes(j.status) });
    cancel.addEventListener("click", async () => { await api("DELETE", `/v1/queue/${j.id}`); loadQueue(); });
    return el("tr", {}, el("td", { textContent: j.id, className: "mono" }), el("td", { textContent: j.status }),
      el("td", { textContent: j.priority }), el("td", { textContent: j.attempts }), el("td", { textContent: time(j.created_at) }), el("td", {}, cancel));
  }));
}

// ---------- refresh ----------
async function refresh() {
  if (!hasAccess()) return banner("Open this page with the link printed by `pai-orchestrator settings-url` (it carries the admin token).");
  const page = tabs.find((t) => !$(`page-${t}`).hidden);
  try {
    if (page === "overview") await loadOverview();
    if (page === "routing" && Object.keys(edit.set).length === 0) await loadRouting();
    if (page === "providers") await loadProviders();
    if (page === "queue") await loadQueue();
  } catch (error) {
    banner(`The proxy does not answer: ${error.message}`);
  }
}

// What changed is pushed (no polling): the page on show reads what it shows again when
// an event concerns it — at most every 300 ms, however many a burst of requests brings.
const concerns = {
  overview: ["quota", "route", "mode", "provider", "waiting", "config"],
  routing: ["config"],
  providers: ["provider", "loading", "config", "demoted"],
  queue: ["waiting", "jobs"],
};
let soon = null;
follow((event) => {
  const page = tabs.find((t) => !$(`page-${t}`).hidden);
  if (!concerns[page]?.includes(event.type) || soon) return;
  soon = setTimeout(() => { soon = null; refresh(); }, 300);
});

show(tabs.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview");
