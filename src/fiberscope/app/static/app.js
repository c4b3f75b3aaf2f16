// fiberscope app: the page. It talks to the server's JSON API (/api/...) and draws with
// Plotly.js (served by the app from the installed plotly package). Everything it shows comes
// from the library through the server; the last result is kept in window.fiberscope for
// inspection (and for the end-to-end tests).
"use strict";

const fiberscope = (window.fiberscope = {
  models: {},
  model: null, // the current model's description
  grid: null, // the heat map of a 2-D model
  run: null, // status of the run being watched
  lastRun: null, // last finished run (status with result)
  lastResult: null,
  start: null, // walk view: {digit: k} | {upload: id} | {values: [...]}
  walk: null, // walk view: last walk/traverse result (with its run id)
  overlays: [], // 2-D view: Plotly traces drawn over the heat map
});

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ server calls
async function api(method, url, body, raw) {
  let resp;
  try {
    const opts = { method, headers: {} };
    if (raw !== undefined) {
      opts.body = raw;
      opts.headers["Content-Type"] = "application/octet-stream";
    } else if (body !== undefined) {
      opts.body = JSON.stringify(body);
      opts.headers["Content-Type"] = "application/json";
    }
    resp = await fetch(url, opts);
  } catch (e) {
    const err = new Error("lost contact with the server: is `fiberscope app` still running?");
    err.network = true;
    throw err;
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = { error: `the server answered ${resp.status} without data` };
  }
  if (!resp.ok) {
    const err = new Error((data && data.error) || `the server answered ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// ------------------------------------------------------------------ messages and progress
function showMessage(kind, text) {
  const el = $("message");
  el.dataset.kind = text ? kind : "none";
  el.textContent = text || "";
}
const showError = (text) => showMessage("error", text);
const showInfo = (text) => showMessage("info", text);

function setStatus(state, text, done, total) {
  const st = $("status");
  st.dataset.state = state;
  st.textContent = text;
  const bar = $("progress");
  if (state === "running" && total) {
    bar.max = total;
    bar.value = done;
  } else if (state === "running") {
    bar.removeAttribute("value"); // indeterminate
  } else {
    bar.max = 1;
    bar.value = state === "done" ? 1 : 0;
  }
  $("cancel").disabled = state !== "running";
  document.body.dataset.state = state === "running" ? "running" : "idle";
}

// ------------------------------------------------------------------ runs
async function startRun(path, body) {
  let run;
  try {
    run = await api("POST", path, body);
  } catch (e) {
    showError(e.message); // refused: nothing else changes (a run going keeps going)
    return null;
  }
  showMessage("none", "");
  watch(run);
  return run;
}

async function watch(run) {
  fiberscope.run = run;
  setStatus("running", `${run.label}: starting`, 0, 0);
  let lost = 0;
  for (;;) {
    await sleep(lost ? 500 : 120);
    let st;
    try {
      st = await api("GET", `/api/runs/${run.id}`);
    } catch (e) {
      if (e.network && lost < 240) {
        lost += 1;
        setStatus("running", `${run.label}: lost contact with the server, retrying...`, 0, 0);
        continue;
      }
      fiberscope.run = null;
      setStatus("failed", `${run.label}: lost`, 0, 0);
      showError(e.message);
      return;
    }
    lost = 0;
    fiberscope.run = st;
    if (st.state === "running") {
      const p = st.progress;
      const frac = p.total ? ` ${p.done}/${p.total}` : "";
      setStatus("running", `${st.label}:${frac || " working"}`, p.done, p.total);
      continue;
    }
    finished(st);
    return;
  }
}

function finished(st) {
  fiberscope.run = null;
  const secs = st.seconds != null ? ` in ${st.seconds.toFixed(2)} s` : "";
  if (st.state === "done") {
    setStatus("done", `${st.label}: done${secs}`);
    fiberscope.lastRun = st;
    fiberscope.lastResult = st.result;
    if (fiberscope.model && st.model === fiberscope.model.name) render(st);
  } else if (st.state === "cancelled") {
    setStatus("cancelled", `${st.label}: cancelled`);
    if (st.result) {
      // the library's partial result (marked incomplete), e.g. the samples of a walk so far
      fiberscope.lastRun = st;
      fiberscope.lastResult = st.result;
      if (fiberscope.model && st.model === fiberscope.model.name) render(st);
    }
    showInfo(`${st.label}: ${st.message}`);
  } else {
    setStatus("failed", `${st.label}: failed`);
    showError(st.message);
  }
}

$("cancel").addEventListener("click", async () => {
  const run = fiberscope.run;
  if (!run) return;
  try {
    await api("POST", `/api/runs/${run.id}/cancel`);
    setStatus("running", `${run.label}: cancelling...`, 0, 0);
  } catch (e) {
    showError(e.message);
  }
});

function render(st) {
  if (st.kind === "point") renderPoint(st);
  else if (st.kind === "preimage") renderBand(st);
  else renderWalk(st);
}

// ------------------------------------------------------------------ numbers and files
const fmt = (v) => {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(6);
  }
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}: ${fmt(x)}`).join("; ");
  return String(v);
};

function fillTable(id, rows) {
  const body = $(id).tBodies[0];
  body.innerHTML = "";
  for (const [key, label, value] of rows) {
    const tr = document.createElement("tr");
    tr.dataset.key = key;
    const th = document.createElement("th");
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = fmt(value);
    tr.append(th, td);
    body.append(tr);
  }
}

function fillDownloads(id, st) {
  const el = $(id);
  el.innerHTML = "";
  for (const name of st.files || []) {
    const a = document.createElement("a");
    a.href = `/api/runs/${st.id}/files/${encodeURIComponent(name)}`;
    a.download = name;
    a.textContent = name;
    el.append(a);
  }
}

// ------------------------------------------------------------------ models
async function loadModels() {
  let data;
  try {
    data = await api("GET", "/api/models");
    const health = await api("GET", "/api/health");
    $("version").textContent = health.version;
  } catch (e) {
    showError(e.message);
    return;
  }
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of data.models) {
    fiberscope.models[m.name] = m;
    const opt = document.createElement("option");
    opt.value = m.name;
    opt.textContent = `${m.name} (${m.kind === "2d" ? "2-D" : m.kind})`;
    sel.append(opt);
  }
  const wanted = new URLSearchParams(location.search).get("model");
  if (wanted && fiberscope.models[wanted]) sel.value = wanted;
  await selectModel(sel.value);
  if (data.running) watch(data.running);
  else setStatus("idle", "ready");
}

$("model").addEventListener("change", (e) => selectModel(e.target.value));

async function selectModel(name) {
  const m = fiberscope.models[name];
  if (!m) return;
  fiberscope.model = m;
  const shape = m.input_shape.join("×");
  const source = m.source.split("/").pop();
  $("model-info").textContent =
    `${source}: ${shape} inputs → ${m.n_outputs} output${m.n_outputs > 1 ? "s" : ""}` +
    (m.output ? ` (output ${m.output})` : "");
  $("view-2d").hidden = m.kind !== "2d";
  $("view-nd").hidden = m.kind === "2d";
  showMessage("none", "");
  if (m.kind === "2d") await setup2d(m);
  else setupNd(m);
}

// ================================================================== 2-D view
function axisRange(lo, hi) {
  const pad = 0.06 * (hi - lo);
  return [lo - pad, hi + pad];
}

async function setup2d(m) {
  $("threshold").value = m.threshold != null ? m.threshold : "";
  document.querySelectorAll(".classifier-only").forEach((el) => (el.hidden = m.threshold == null));
  const span = Math.min(m.bounds[1][0] - m.bounds[0][0], m.bounds[1][1] - m.bounds[0][1]);
  $("step-2d").value = +(span / 200).toPrecision(2);
  fillTable("numbers", []);
  $("downloads-2d").innerHTML = "";
  let grid;
  try {
    grid = await api("GET", `/api/models/${encodeURIComponent(m.name)}/grid?resolution=160`);
  } catch (e) {
    showError(e.message);
    return;
  }
  fiberscope.grid = grid;
  fiberscope.overlays = [];
  drawMap();
}

function baseTraces() {
  const g = fiberscope.grid;
  const traces = [
    {
      type: "heatmap", x: g.xs, y: g.ys, z: g.z, colorscale: "Viridis", zsmooth: "best",
      colorbar: { title: { text: "N(x)" }, thickness: 14 },
      hovertemplate: "x=%{x:.4f}<br>y=%{y:.4f}<br>N=%{z:.6g}<extra></extra>",
    },
  ];
  const t = thresholdValue();
  if (t !== null && g.zmin < t && t < g.zmax) {
    traces.push({
      type: "contour", x: g.xs, y: g.ys, z: g.z, showscale: false, hoverinfo: "skip",
      contours: { start: t, end: t, size: 1, coloring: "none" },
      line: { color: "rgba(255,255,255,0.8)", width: 1.5, dash: "dash" },
      name: "decision boundary (grid)", showlegend: true,
    });
  }
  return traces;
}

function drawMap() {
  const g = fiberscope.grid;
  fiberscope.axes = { x: axisRange(g.lo[0], g.hi[0]), y: axisRange(g.lo[1], g.hi[1]) };
  const layout = {
    margin: { l: 55, r: 10, t: 30, b: 40 },
    xaxis: { range: axisRange(g.lo[0], g.hi[0]), fixedrange: true, title: { text: "x₀" }, zeroline: false },
    yaxis: { range: axisRange(g.lo[1], g.hi[1]), fixedrange: true, title: { text: "x₁" }, zeroline: false },
    dragmode: false,
    showlegend: false, // the legend is drawn beside the map: the plot area never moves
    shapes: [{ type: "rect", x0: g.lo[0], y0: g.lo[1], x1: g.hi[0], y1: g.hi[1], line: { color: "#444", width: 1, dash: "dot" } }],
    title: { text: `${g.model}`, font: { size: 13 }, x: 0.99, xanchor: "right" },
  };
  const traces = baseTraces().concat(fiberscope.overlays);
  Plotly.react("map", traces, layout, {
    displayModeBar: false, responsive: false, scrollZoom: false, doubleClick: false,
  });
  drawLegend(traces);
}

const DASH = { dash: "6 4", dot: "2 3" };

function drawLegend(traces) {
  const el = $("map-legend");
  el.innerHTML = "";
  for (const t of traces) {
    if (!t.name || t.showlegend === false || t.type === "heatmap" && t.name !== "band") continue;
    const item = document.createElement("span");
    item.className = "item";
    let swatch;
    if (t.type === "heatmap") {
      swatch = '<rect x="2" y="2" width="22" height="8" fill="#ccc" stroke="#888"/>';
    } else if (t.mode === "markers") {
      const m = t.marker || {};
      swatch = `<circle cx="13" cy="6" r="4.5" fill="${m.color || "#000"}" stroke="#333"/>`;
    } else {
      const l = t.line || {};
      const dash = DASH[l.dash] ? ` stroke-dasharray="${DASH[l.dash]}"` : "";
      swatch = `<line x1="1" y1="6" x2="25" y2="6" stroke="${l.color || "#fff"}" stroke-width="${Math.min(l.width || 2, 3)}"${dash}/>`;
    }
    item.innerHTML = `<svg width="26" height="12" aria-hidden="true">${swatch}</svg>`;
    item.append(document.createTextNode(t.name));
    el.append(item);
  }
}

function thresholdValue() {
  const text = $("threshold").value.trim();
  if (!text) return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : NaN;
}

// -- mouse: click or drag on the map (our own handlers; Plotly's zoom is off)
const drag = { down: null, moved: false };

function plotArea() {
  const box = document.querySelector("#map .nsewdrag");
  return box ? box.getBoundingClientRect() : null;
}

function toData(ev) {
  const r = plotArea();
  const g = fiberscope.grid;
  if (!r || !g) return null;
  const [x0, x1] = axisRange(g.lo[0], g.hi[0]);
  const [y0, y1] = axisRange(g.lo[1], g.hi[1]);
  const fx = (ev.clientX - r.left) / r.width;
  const fy = (ev.clientY - r.top) / r.height;
  if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return null;
  return { x: x0 + fx * (x1 - x0), y: y1 - fy * (y1 - y0), px: ev.clientX, py: ev.clientY };
}

function overlayLine(a, b) {
  const cv = $("drag-overlay");
  const wrap = $("map-wrap").getBoundingClientRect();
  cv.width = wrap.width;
  cv.height = wrap.height;
  const ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!a || !b) return;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  ctx.setLineDash([6, 4]);
  ctx.beginPath();
  ctx.moveTo(a.px - wrap.left, a.py - wrap.top);
  ctx.lineTo(b.px - wrap.left, b.py - wrap.top);
  ctx.stroke();
}

const mapWrap = $("map-wrap");
mapWrap.addEventListener("mousedown", (ev) => {
  if (ev.button !== 0) return;
  const p = toData(ev);
  if (!p) return;
  drag.down = p;
  drag.moved = false;
  ev.preventDefault();
}, true);
window.addEventListener("mousemove", (ev) => {
  if (!drag.down) return;
  const dx = ev.clientX - drag.down.px;
  const dy = ev.clientY - drag.down.py;
  if (Math.hypot(dx, dy) > 5) drag.moved = true;
  if (drag.moved) overlayLine(drag.down, { px: ev.clientX, py: ev.clientY });
}, true);
window.addEventListener("mouseup", (ev) => {
  const start = drag.down;
  drag.down = null;
  if (!start) return;
  const end = toData(ev);
  overlayLine(null, null);
  if (!drag.moved) {
    clickPoint([start.x, start.y]);
  } else if (!end) {
    showError("the drag ended outside the map; end it inside the box");
  } else {
    dragBand([start.x, start.y], [end.x, end.y]);
  }
}, true);

function stepValue(id) {
  return Number($(id).value);
}

function clickPoint(point) {
  const t = thresholdValue();
  if (Number.isNaN(t)) {
    showError("the decision threshold must be a number (or empty)");
    return;
  }
  startRun("/api/runs/point", {
    model: fiberscope.model.name, point, step: stepValue("step-2d"),
    paper: $("paper").checked, threshold: t,
  });
}

function dragBand(p1, p2) {
  startRun("/api/runs/preimage", {
    model: fiberscope.model.name, p1, p2, levels: Number($("levels").value), step: stepValue("step-2d"),
  });
}

$("run-preimage").addEventListener("click", () => {
  const a = Number($("int-a").value);
  const b = Number($("int-b").value);
  if ($("int-a").value.trim() === "" || $("int-b").value.trim() === "" || !Number.isFinite(a) || !Number.isFinite(b)) {
    showError("type both ends of the output interval as numbers, or drag on the map");
    return;
  }
  startRun("/api/runs/preimage", {
    model: fiberscope.model.name, a, b, levels: Number($("levels").value), step: stepValue("step-2d"),
  });
});
$("threshold").addEventListener("change", () => fiberscope.grid && drawMap());

function line(points, closed, style, name, extra) {
  const pts = closed && points.length ? points.concat([points[0]]) : points;
  return Object.assign({
    type: "scatter", mode: "lines", x: pts.map((p) => p[0]), y: pts.map((p) => p[1]),
    line: style, name, hoverinfo: "skip",
  }, extra || {});
}

function marker(p, style, name) {
  return { type: "scatter", mode: "markers", x: [p[0]], y: [p[1]], marker: style, name, hovertemplate: `${name}<br>(%{x:.5f}, %{y:.5f})<extra></extra>` };
}

function renderPoint(st) {
  const r = st.result;
  const tr = r.trace;
  const overlays = [line(tr.points, tr.closed, { color: "#ff3b30", width: 3 }, "class (corrected)")];
  if (r.paper) overlays.push(line(r.paper.points, false, { color: "#ffb000", width: 2, dash: "dot" }, "authors' trace (paper mode)"));
  const rows = [
    ["y0", "N(x₀)", r.y0],
    ["closed", "closed loop", tr.closed],
    ["drift", "drift max|N(x) − N(x₀)|", tr.drift],
    ["stop_reasons", "stop reasons", tr.stop_reasons],
    ["n_points", "points", tr.n_points],
    ["length", "length", tr.length],
    ["steps", "steps / rejected", `${tr.stats.steps} / ${tr.stats.rejected}`],
    ["jacobian_evals", "Jacobian evaluations", tr.stats.jacobian_evals],
    ["time", "time (s)", tr.stats.wall_time],
  ];
  if (r.paper) {
    rows.push(["paper_drift", "paper mode: drift", r.paper.drift]);
    rows.push(["paper_steps", "paper mode: steps", r.paper.stats.steps]);
  }
  const b = r.boundary;
  if (b && b.error) {
    rows.push(["boundary_error", "decision boundary", b.error]);
  } else if (b) {
    if (b.boundary_class) overlays.push(line(b.boundary_class.points, b.boundary_class.closed, { color: "#ffffff", width: 2 }, "decision boundary (traced)"));
    if (b.boundary_index == null) {
      // a cancelled walk that has not reached the boundary yet: its path so far
      overlays.push(line(b.path, false, { color: "#00e5ff", width: 3 }, "gradient path (cancelled)"));
    } else {
      const cut = b.boundary_index + 1;
      overlays.push(line(b.path.slice(0, cut), false, { color: "#00e5ff", width: 3 }, "gradient path to the boundary"));
      overlays.push(line(b.path.slice(b.boundary_index), false, { color: "#00e5ff", width: 2, dash: "dot" }, "past the boundary"));
    }
    if (b.closest_point) {
      overlays.push(line([r.x0, b.closest_point], false, { color: "#ff4fd8", width: 2, dash: "dash" }, "shortest change"));
      overlays.push(marker(b.closest_point, { color: "#ff4fd8", size: 9, symbol: "diamond" }, "closest boundary point"));
    }
    if (b.complete !== false) overlays.push(marker(b.flip_point, { color: "#00e5ff", size: 9, symbol: "x" }, "flipped point"));
    rows.push(
      ["threshold", "threshold", b.threshold],
      ["decisions", "decision: start → flipped", `${b.decision_start} → ${b.decision_flip}`],
      ["closest_distance", "shortest change ‖x − x₀‖", b.closest_distance],
      ["closest_kkt", "optimality residual (sin angle)", b.closest_kkt],
      ["boundary_distance", "gradient path: distance to boundary", b.boundary_distance],
      ["boundary_length", "gradient path: length to boundary", b.boundary_length],
      ["flip_output", "score at the flipped point", b.flip_output],
    );
    if (b.boundary_class) rows.push(["boundary_drift", "boundary trace drift", b.boundary_class.drift]);
    if (b.boundary_class_error) rows.push(["boundary_class_error", "boundary trace", b.boundary_class_error]);
  }
  const parts = [tr, r.paper, b, b && b.boundary_class].filter((p) => p && p.complete === false);
  if (parts.length || st.state === "cancelled") rows.unshift(["complete", "complete", "no: cancelled, partial result"]);
  overlays.push(marker(r.x0, { color: "#fff", size: 10, line: { color: "#000", width: 1.5 } }, "x₀"));
  fiberscope.overlays = overlays;
  drawMap();
  $("numbers-title").textContent = `class of (${fmt(r.x0[0])}, ${fmt(r.x0[1])})`;
  fillTable("numbers", rows);
  fillDownloads("downloads-2d", st);
}

function renderBand(st) {
  const r = st.result;
  const overlays = [];
  if (r.region) {
    const z = r.region.mask.map((row) => Array.from(row, (c) => (c === "1" ? 1 : null)));
    overlays.push({
      type: "heatmap", x: r.region.xs, y: r.region.ys, z, showscale: false, hoverinfo: "skip",
      colorscale: [[0, "rgba(255,255,255,0.45)"], [1, "rgba(255,255,255,0.45)"]], name: "band", showlegend: true,
    });
  }
  r.traces.forEach((t, i) => {
    const edge = i === 0 || i === r.traces.length - 1;
    overlays.push(line(t.points, t.closed, { color: edge ? "#ff3b30" : "rgba(255,59,48,0.6)", width: edge ? 2.5 : 1 },
      edge ? `level ${fmt(r.levels[i])}` : "", { showlegend: edge }));
  });
  overlays.push(marker(r.start, { color: "#fff", size: 9, line: { color: "#000", width: 1.5 } }, "start"));
  fiberscope.overlays = overlays;
  drawMap();
  $("int-a").value = r.interval[0].toPrecision(8);
  $("int-b").value = r.interval[1].toPrecision(8);
  const reg = r.region || {};
  const bd = reg.boundary_distance || {};
  $("numbers-title").textContent = `band ${fmt(r.interval[0])} ≤ N ≤ ${fmt(r.interval[1])}`;
  const partial = r.complete === false ? [["complete", "complete", "no: cancelled, partial result"]] : [];
  fillTable("numbers", partial.concat([
    ["interval", "output interval", r.interval],
    ["area", "area of the band (grid)", reg.area],
    ["polygon_area", "area from the traced levels", reg.polygon_area],
    ["band_area", "area of every part of the band", reg.band_area],
    ["levels", "levels traced", r.traces.length],
    ["closed", "closed levels", r.traces.filter((t) => t.closed).length],
    ["drift", "drift max|N(x) − level|", r.drift],
    ["boundary_distance", "traced ends vs grid contours (max)", bd.low && bd.high ? [bd.low.max, bd.high.max] : null],
    ["unreached", "levels not reached", r.unreached.length ? r.unreached.map((u) => u.reason || fmt(u)).join("; ") : "none"],
    ["stop_reasons", "stop reasons", Array.from(new Set(r.traces.flatMap((t) => Object.values(t.stop_reasons)))).join(", ")],
    ["time", "time (s)", r.stats.wall_time],
  ]));
  fillDownloads("downloads-2d", st);
}

// ================================================================== n-D and image view
function setupNd(m) {
  const image = !!m.image;
  document.querySelectorAll(".image-only").forEach((el) => el.classList.toggle("hidden-by-kind", !image));
  document.querySelectorAll(".coords-only").forEach((el) => el.classList.toggle("hidden-by-kind", image));
  const digits = $("digits");
  digits.innerHTML = "";
  $("uploads").innerHTML = "";
  const labels = m.digits || [];
  for (let k = 0; k < labels.length; k++) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.digit = k;
    b.dataset.label = labels[k];
    b.title = `test digit ${k}: a ${labels[k]}`;
    b.innerHTML = `<img src="/api/digits/${k}.png" alt="digit ${k} (a ${labels[k]})">`;
    b.addEventListener("click", () => chooseStart({ digit: k }, b));
    digits.append(b);
  }
  const target = $("target");
  target.innerHTML = "";
  if (labels.length) {
    for (let k = 0; k < labels.length; k++) target.append(new Option(`test digit ${k} (a ${labels[k]})`, `digit:${k}`));
  } else if (!image) {
    target.append(new Option("the coordinates below", "coords"));
  }
  if (!image) {
    const mid = m.bounds ? (m.bounds[0] + m.bounds[1]) / 2 : 0.5;
    $("coords").value = Array(m.n_inputs).fill(mid).join(", ");
    $("target-coords").value = Array(m.n_inputs).fill(mid).join(", ");
    fiberscope.start = null;
  } else if (labels.length) {
    // a 3 toward an 8 (the first test digit of each class)
    const three = Math.max(0, labels.indexOf(3));
    chooseStart({ digit: three }, digits.children[three]);
    const eight = labels.indexOf(8);
    if (eight >= 0) target.value = `digit:${eight}`;
  } else {
    fiberscope.start = null;
  }
  $("step-walk").value = image ? 1 : 0.1;
  fiberscope.walk = null;
  fillTable("walk-numbers", []);
  $("downloads-nd").innerHTML = "";
  $("chain").innerHTML = "";
  $("scrub").max = 0;
  $("scrub-label").textContent = "";
  $("frame").removeAttribute("src");
  $("frame-diff").removeAttribute("src");
  $("frame-start").removeAttribute("src");
  Plotly.purge("bars");
  Plotly.purge("coords-plot");
  $("bars").innerHTML = "";
  $("coords-plot").innerHTML = "";
}

function chooseStart(ref, button) {
  fiberscope.start = ref;
  document.querySelectorAll(".thumbs button").forEach((b) => b.classList.remove("selected"));
  if (button) button.classList.add("selected");
  const img = button && button.querySelector("img");
  if (img) $("frame-start").src = img.src;
}

$("upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  const m = fiberscope.model;
  let up;
  try {
    up = await api("POST", `/api/models/${encodeURIComponent(m.name)}/upload`, undefined, await file.arrayBuffer());
  } catch (e) {
    showError(`${file.name}: ${e.message}`);
    return;
  }
  showMessage("none", "");
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.upload = up.id;
  b.title = file.name;
  b.innerHTML = `<img src="${up.url}" alt="${file.name}">`;
  b.addEventListener("click", () => chooseStart({ upload: up.id }, b));
  $("uploads").append(b);
  $("target").append(new Option(`upload: ${file.name}`, `upload:${up.id}`));
  chooseStart({ upload: up.id }, b);
});

function parseCoords(id) {
  const parts = $(id).value.split(/[,\s]+/).filter((s) => s !== "");
  const values = parts.map(Number);
  if (!values.length || values.some((v) => !Number.isFinite(v))) return null;
  return values;
}

function startRef() {
  const m = fiberscope.model;
  if (m.image) return fiberscope.start;
  const values = parseCoords("coords");
  return values ? { values } : null;
}

function walkBody(extra) {
  const ref = startRef();
  if (!ref) {
    showError(fiberscope.model.image ? "choose a start: a test digit or an uploaded image" : "type the start's coordinates as numbers");
    return null;
  }
  return Object.assign({
    model: fiberscope.model.name, start: ref, samples: Number($("samples").value),
    chains: Number($("chains").value), step: Number($("step-walk").value), seed: Number($("seed").value),
    method: $("method").value,
  }, extra || {});
}

$("run-walk").addEventListener("click", () => {
  const body = walkBody();
  if (body) startRun("/api/runs/walk", body);
});

$("run-traverse").addEventListener("click", () => {
  const sel = $("target").value;
  let target = null;
  if (sel.startsWith("digit:")) target = { digit: Number(sel.slice(6)) };
  else if (sel.startsWith("upload:")) target = { upload: sel.slice(7) };
  else if (sel === "coords") {
    const values = parseCoords("target-coords");
    if (values) target = { values };
  }
  if (!target) {
    showError("choose a target to walk toward");
    return;
  }
  const body = walkBody({ target, max_steps: Number($("max-steps").value) });
  if (body) startRun("/api/runs/walk", body);
});

// the library's own numbers: [key in result.numbers, label]
const WALK_NUMBERS = [
  ["method", "method (fs.walk)"],
  ["samples", "samples kept per chain"],
  ["residual", "max |N(x) − N(x₀)| over all samples"],
  ["acceptance", "acceptance"],
  ["accepted", "accepted steps per chain"],
  ["rejections", "rejections by reason (per chain)"],
  ["rank_changes", "rank changes of J per chain"],
  ["path_length", "path length per chain"],
  ["stop_reasons", "stop reasons"],
  ["seeds", "seeds"],
];
const TRAVERSE_NUMBERS = [
  ["points", "points on the path (fs.traverse)"],
  ["start_distance", "distance to the target at the start"],
  ["end_distance", "distance to the target at the end"],
  ["length", "path length"],
  ["stop_reason", "stop reason"],
  ["kkt", "kkt |P(target − x)| / |target − x|"],
  ["residual", "max |N(x) − N(x₀)| along the path"],
];

function renderWalk(st) {
  const r = st.result;
  fiberscope.walk = Object.assign({ id: st.id }, r);
  const chain = $("chain");
  chain.innerHTML = "";
  for (let c = 0; c < r.chains; c++) chain.append(new Option(`${c + 1} (${r.counts[c]})`, String(c)));
  const first = r.counts.findIndex((n) => n > 0);
  chain.value = String(Math.max(0, first));
  const n = r.numbers || {};
  const rows = [];
  if (!r.complete) rows.push(["complete", "complete", "no: cancelled, partial result"]);
  for (const [key, label] of r.kind === "walk" ? WALK_NUMBERS : TRAVERSE_NUMBERS) {
    if (n[key] !== undefined && n[key] !== null) rows.push([key, label, n[key]]);
  }
  if (r.kind === "traverse") rows.push(["message", "why it stopped", r.message]);
  const stats = n.stats || {};
  rows.push(["jacobian_evals", "Jacobian evaluations", stats.jacobian_evals]);
  rows.push(["time", "time (s)", stats.wall_time]);
  fillTable("walk-numbers", rows);
  fillDownloads("downloads-nd", st);
  $("frame-start").src = `/api/runs/${st.id}/start.png`;
  if (first < 0) {
    // nothing to scrub: say why (the library's stop reasons)
    $("scrub").max = 0;
    $("frame").removeAttribute("src");
    $("frame-diff").removeAttribute("src");
    $("scrub-label").textContent = "";
    Plotly.purge("bars");
    $("bars").innerHTML = "";
    const why = r.kind === "walk" ? (n.stop_reasons || []).join(", ") : n.stop_reason;
    showInfo(`the ${r.kind} kept no sample (stop reasons: ${why})`);
    return;
  }
  chainChanged(true);
}

function chainChanged(toEnd) {
  const w = fiberscope.walk;
  if (!w) return;
  const c = Number($("chain").value || 0);
  const scrub = $("scrub");
  scrub.max = Math.max(0, w.counts[c] - 1);
  if (toEnd || Number(scrub.value) > Number(scrub.max)) scrub.value = scrub.max;
  showSample();
}

function showSample() {
  const w = fiberscope.walk;
  if (!w) return;
  const c = Number($("chain").value || 0);
  const k = Number($("scrub").value);
  const count = w.counts[c];
  if (!count) {
    $("frame").removeAttribute("src");
    $("frame-diff").removeAttribute("src");
    $("scrub-label").textContent = `chain ${c + 1} kept no sample`;
    return;
  }
  const m = fiberscope.model;
  if (m.image) {
    $("frame").src = `/api/runs/${w.id}/frame/${c}/${k}.png`;
    $("frame-diff").src = `/api/runs/${w.id}/frame/${c}/${k}.png?diff=1`;
  } else if (w.coordinates) {
    const xs = w.coordinates[c][k].map((_, i) => i);
    Plotly.react("coords-plot", [
      { type: "scatter", mode: "lines+markers", x: xs, y: w.x0, name: "x₀" },
      { type: "scatter", mode: "lines+markers", x: xs, y: w.coordinates[c][k], name: `sample ${k + 1}` },
    ], { margin: { l: 45, r: 10, t: 25, b: 35 }, title: { text: "coordinates", font: { size: 12 } }, xaxis: { title: { text: "input" } } }, { displayModeBar: false });
  }
  const out = w.outputs[c][k];
  const idx = out.map((_, i) => i);
  const res = w.residuals[c][k];
  let caption = `sample ${k + 1}/${count}`;
  if (w.kind === "traverse") caption = `step ${k}/${count - 1}`;
  $("frame-caption").textContent = caption;
  const dist = w.distance_from_start[c][k];
  let label = `${caption} · chain ${c + 1} · ‖x − x₀‖ = ${fmt(dist)} · max|N(x) − N(x₀)| = ${fmt(res)}`;
  if (w.distance_to_target) label += ` · distance to target ${fmt(w.distance_to_target[c][k])}`;
  $("scrub-label").textContent = label;
  $("scrub-label").dataset.residual = String(res);
  Plotly.react("bars", [
    { type: "bar", x: idx, y: w.y0, name: "N(x₀)", marker: { color: "#94a3b8" } },
    { type: "bar", x: idx, y: out, name: `N(x) at ${caption}`, marker: { color: "#c2410c" } },
  ], {
    barmode: "group", margin: { l: 45, r: 10, t: 30, b: 75 },
    title: { text: `outputs stay where they were: max|ΔN| = ${fmt(res)}`, font: { size: 12 } },
    xaxis: { title: { text: "output" }, dtick: 1 }, legend: { orientation: "h", y: -0.3 },
  }, { displayModeBar: false });
}

$("scrub").addEventListener("input", showSample);
$("chain").addEventListener("change", () => chainChanged(false));
let playing = null;
$("play").addEventListener("click", () => {
  if (playing) {
    clearInterval(playing);
    playing = null;
    $("play").textContent = "Play";
    return;
  }
  $("play").textContent = "Pause";
  playing = setInterval(() => {
    const s = $("scrub");
    s.value = (Number(s.value) + 1) % (Number(s.max) + 1);
    showSample();
  }, 150);
});

loadModels();
