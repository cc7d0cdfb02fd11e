// gradfit playground: the page sends each control change to /api/run and draws the events it streams
// back (setup: data, start, code; frames: (epoch, loss, w, b); optimum: the exact optimum and the loss
// surface; done: the why-line). state.marks holds when each arrived (bench/playground.py --browser).
"use strict";

const COLORS = ["#d62728", "#2ca02c", "#9467bd"];
const $ = (id) => document.getElementById(id);
const state = {lang: "en", labels: {}, setup: null, runs: [], controller: null, added: [], moved: {},
               start: null, upload: null, drawQueued: false};

// -- controls -----------------------------------------------------------------------------------------
function numberOr(id, fallback) {
  const v = $(id).value.trim();
  return v === "" ? fallback : Number(v);
}

const BOUNDED = {lr: "lr", epochs: "epochs", batch: "batch_size", n: "n", noise: "noise", seed: "seed",
                 delta: "delta", tau: "tau"};

function checkBounds() {  // the server's bounds, said before asking it (the same words as its 400 answer)
  for (const [id, name] of Object.entries(BOUNDED)) {
    const el = $(id);
    if (el.value.trim() === "") continue;
    const v = Number(el.value), lo = el.min === "" ? -Infinity : Number(el.min), hi = el.max === "" ? Infinity : Number(el.max);
    if (!isFinite(v)) return `${name} must be a number, got ${el.value}`;
    if (v < lo || v > hi) return `${name} must be between ${lo} and ${hi}, got ${v}`;
  }
  return "";
}

function settings() {
  const race = [...document.querySelectorAll(".race input:checked")].map((e) => e.value);
  const batch = $("batch").value.trim();
  return {lang: state.lang, loss: $("loss").value, optimizer: $("optimizer").value, lr: numberOr("lr", 0.001),
          epochs: numberOr("epochs", 500), batch_size: batch === "" ? null : Number(batch),
          standardize: $("standardize").checked, delta: numberOr("delta", 1), tau: numberOr("tau", 0.5),
          n: state.upload ? state.upload.n : numberOr("n", 1000), noise: numberOr("noise", 1), seed: numberOr("seed", 0),
          race: race.filter((r) => r !== $("optimizer").value).slice(0, 2),
          added: state.added, moved: state.moved, start: state.start, upload: state.upload ? state.upload.id : null};
}

let timer = null, lastRunAt = -Infinity;
function schedule(delay = 0) {
  clearTimeout(timer);
  timer = setTimeout(run, delay);
}

function throttle(gap = 80) {  // while the slider moves: a run at most every `gap` ms, the last one always
  schedule(Math.max(0, lastRunAt + gap - performance.now()));
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}

async function run() {
  lastRunAt = performance.now();
  state.marks = {run: lastRunAt};
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const refused = checkBounds();
  showError(refused);
  if (refused) {
    document.body.dataset.state = "error";
    return;
  }
  document.body.dataset.state = "running";
  $("why").dataset.kind = "";
  $("why-text").textContent = state.labels.running || "running…";
  try {
    const resp = await fetch("/api/run", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(settings()), signal: controller.signal});
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({error: resp.statusText}));
      showError(body.error);
      $("why-text").textContent = "—";
      document.body.dataset.state = "error";
      return;
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (chunk.startsWith("data: ") && state.controller === controller) handle(JSON.parse(chunk.slice(6)));
      }
    }
    if (state.controller === controller) {
      document.body.dataset.state = "done";
      document.body.dataset.completed = String(+(document.body.dataset.completed || 0) + 1);  // tests wait on it
    }
  } catch (err) {
    if (err.name !== "AbortError") showError(String(err));
  }
}

function handle(ev) {
  const now = performance.now(), marks = state.marks || {};
  if (ev.type === "setup") {
    marks.setup = now;
    // the previous optimum and surface stay drawn until this change's arrive (no flicker)
    const old = state.setup;
    state.setup = Object.assign(ev, {optimum: old ? old.optimum : null, surface: old ? old.surface : null});
    state.runs = [];
    $("code").textContent = ev.code;
    $("note").hidden = !ev.note;
    $("note").textContent = ev.note || "";
    $("limit").textContent = ev.lr_max ? `${state.labels.limit || "stable while lr <"} ${ev.lr_max.toPrecision(3)}`
                                       : (state.labels.no_limit || "");
  } else if (ev.type === "optimum") {
    marks.optimum = now;
    if (!state.setup) return;
    state.setup.optimum = ev.optimum;
    state.setup.surface = ev.surface;
    const o = ev.optimum;
    $("optimum").dataset.w = o.w;
    $("optimum").dataset.b = o.b;
    $("optimum-text").textContent = `w* = ${o.w.toFixed(4)}, b* = ${o.b.toFixed(4)}, ${state.labels.loss_axis || "loss"} ` +
      `${o.loss.toPrecision(6)} — ${state.labels.certificate || "certified gap"} ` +
      `${o.gap === null ? "?" : o.gap.toExponential(1)} (${o.solver})`;
  } else if (ev.type === "frames") {
    if (ev.run === 0) {
      if (marks.first === undefined) marks.first = now;
      marks.last = now;
    }
    const r = state.runs[ev.run] || (state.runs[ev.run] = {frames: [], done: null});
    for (const fr of ev.frames) r.frames.push(fr);  // push(...frames) overflows the stack for long paths
  } else if (ev.type === "done") {
    if (ev.run === 0) marks.done = now;
    const r = state.runs[ev.run] || (state.runs[ev.run] = {frames: [], done: null});
    r.done = ev;
    if (ev.run === 0) {
      $("why").dataset.kind = ev.kind;
      $("why-text").textContent = ev.why;
      const fit = $("fit");
      fit.dataset.w = ev.w;
      fit.dataset.b = ev.b;
      fit.textContent = `${state.labels.fitted || "fitted line"}: w = ${ev.w.toFixed(6)}, b = ${ev.b.toFixed(6)} ` +
        `(${ev.optimizer}, ${ev.epochs_run} ${state.labels.epochs || "epochs"})`;
    }
  } else if (ev.type === "error") {
    showError(ev.message);
  }
  queueDraw();
}

// -- drawing --------------------------------------------------------------------------------------------
function queueDraw() {
  if (state.drawQueued) return;
  state.drawQueued = true;
  requestAnimationFrame(() => { state.drawQueued = false; drawAll(); });
}

function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return {ctx, w, h};
}

function frame(w, h, xr, yr, ylog = false) {
  const m = {l: 52, r: 12, t: 10, b: 38};
  const ty = ylog ? (v) => Math.log10(Math.max(v, 1e-300)) : (v) => v;
  const y0 = ty(yr[0]), y1 = ty(yr[1]);
  return {m, xr, yr, ylog,
    X: (v) => m.l + (v - xr[0]) / (xr[1] - xr[0] || 1) * (w - m.l - m.r),
    Y: (v) => h - m.b - (ty(v) - y0) / (y1 - y0 || 1) * (h - m.t - m.b),
    invX: (px) => xr[0] + (px - m.l) / (w - m.l - m.r) * (xr[1] - xr[0]),
    invY: (py) => yr[0] + (h - m.b - py) / (h - m.t - m.b) * (yr[1] - yr[0]), w, h};
}

function ticks(lo, hi, count = 5) {
  const step0 = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(step0 || 1)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) || mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
  return out;
}

function axes(ctx, f, xlabel, ylabel) {
  const {m, w, h} = f;
  ctx.strokeStyle = "#888";
  ctx.lineWidth = 1;
  ctx.strokeRect(m.l, m.t, w - m.l - m.r, h - m.t - m.b);
  ctx.fillStyle = "#333";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  for (const t of ticks(f.xr[0], f.xr[1])) {
    const x = f.X(t);
    ctx.fillText(fmt(t), x, h - m.b + 14);
    ctx.beginPath(); ctx.moveTo(x, h - m.b); ctx.lineTo(x, h - m.b + 4); ctx.stroke();
  }
  ctx.textAlign = "right";
  const yt = f.ylog ? logTicks(f.yr[0], f.yr[1]) : ticks(f.yr[0], f.yr[1]);
  for (const t of yt) {
    const y = f.Y(t);
    ctx.fillText(f.ylog ? t.toExponential(0) : fmt(t), m.l - 4, y + 4);
    ctx.beginPath(); ctx.moveTo(m.l - 3, y); ctx.lineTo(m.l, y); ctx.stroke();
  }
  ctx.textAlign = "center";
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(xlabel, m.l + (w - m.l - m.r) / 2, h - 6);
  ctx.save();
  ctx.translate(12, m.t + (h - m.t - m.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
}

function logTicks(lo, hi) {
  const out = [];
  const a = Math.ceil(Math.log10(lo)), b = Math.floor(Math.log10(hi));
  const step = Math.max(1, Math.ceil((b - a + 1) / 6));
  for (let e = a; e <= b; e += step) out.push(Math.pow(10, e));
  return out;
}

function fmt(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(+v.toPrecision(4));
}

function clip(ctx, f) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(f.m.l, f.m.t, f.w - f.m.l - f.m.r, f.h - f.m.t - f.m.b);
  ctx.clip();
}

function lastFrame(r) {
  return r && r.frames.length ? r.frames[r.frames.length - 1] : null;
}

function runLabel(i) {
  const r = state.runs[i];
  const name = r && r.done ? r.done.optimizer : (i === 0 ? $("optimizer").value : settings().race[i - 1]);
  return name || "";
}

function drawData() {
  const {ctx, w, h} = prepare($("data"));
  const s = state.setup;
  if (!s) return;
  const P = s.points;
  let xlo = Math.min(...P.x), xhi = Math.max(...P.x), ylo = Math.min(...P.y), yhi = Math.max(...P.y);
  const px = 0.05 * (xhi - xlo || 1), py = 0.35 * (yhi - ylo || 1);
  const f = frame(w, h, [xlo - px, xhi + px], [ylo - py, yhi + py]);
  state.dataFrame = f;
  axes(ctx, f, "x", "y");
  clip(ctx, f);
  for (let k = 0; k < P.x.length; k++) {
    const added = P.i[k] >= (s.points.n - state.added.length);
    const moved = state.moved[P.i[k]] !== undefined;
    ctx.fillStyle = added || moved ? "rgba(214,39,40,0.9)" : "rgba(31,119,180,0.35)";
    ctx.beginPath();
    ctx.arc(f.X(P.x[k]), f.Y(P.y[k]), added || moved ? 4 : 2.2, 0, 2 * Math.PI);
    ctx.fill();
  }
  const line = (wv, bv, color, dash, width) => {
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash);
    ctx.beginPath(); ctx.moveTo(f.X(f.xr[0]), f.Y(wv * f.xr[0] + bv)); ctx.lineTo(f.X(f.xr[1]), f.Y(wv * f.xr[1] + bv));
    ctx.stroke(); ctx.setLineDash([]);
  };
  if (s.optimum) line(s.optimum.w, s.optimum.b, "#111", [7, 5], 1.8);
  state.runs.forEach((r, i) => { const fr = lastFrame(r); if (fr) line(fr[2], fr[3], COLORS[i], [], 2.6); });
  ctx.restore();
  legend(ctx, f, [[state.labels.optimum_line || "exact optimum", "#111", true]].concat(
    state.runs.map((r, i) => [`${runLabel(i)}${lastFrame(r) ? ` · ${state.labels.epoch || "epoch"} ${lastFrame(r)[0]}` : ""}`, COLORS[i], false])));
}

function legend(ctx, f, items) {
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "left";
  let y = f.m.t + 16;
  for (const [text, color, dashed] of items) {
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(f.m.l + 6, y - 11, ctx.measureText(text).width + 34, 16);
    ctx.strokeStyle = color; ctx.lineWidth = 2.4; ctx.setLineDash(dashed ? [5, 4] : []);
    ctx.beginPath(); ctx.moveTo(f.m.l + 10, y - 4); ctx.lineTo(f.m.l + 32, y - 4); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = "#222";
    ctx.fillText(text, f.m.l + 37, y);
    y += 17;
  }
}

function viridis(t) {  // a short viridis ramp, t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const u = Math.min(Math.max(t, 0), 1) * (stops.length - 1), k = Math.min(Math.floor(u), stops.length - 2), a = u - k;
  return stops[k].map((c, j) => Math.round(c + a * (stops[k + 1][j] - c)));
}

function drawSurface() {
  const {ctx, w, h} = prepare($("surface"));
  const s = state.setup;
  if (!s || !s.surface) return;
  const S = s.surface, n = S.w.length;
  const f = frame(w, h, [S.w[0], S.w[n - 1]], [S.b[0], S.b[n - 1]]);
  state.surfaceFrame = f;
  ctx.drawImage(surfaceBackground(S, f), 0, 0, w, h);
  clip(ctx, f);
  let outside = false;
  state.runs.forEach((r, i) => {
    if (!r.frames.length) return;
    ctx.strokeStyle = COLORS[i]; ctx.lineWidth = r.frames.length > 200 ? 1.4 : 2.2;
    ctx.beginPath();
    r.frames.forEach((fr, j) => {
      const X = f.X(fr[2]), Y = f.Y(fr[3]);
      j ? ctx.lineTo(X, Y) : ctx.moveTo(X, Y);
      outside = outside || !(fr[2] >= f.xr[0] && fr[2] <= f.xr[1] && fr[3] >= f.yr[0] && fr[3] <= f.yr[1]);
    });
    ctx.stroke();
    const fr = lastFrame(r);
    ctx.fillStyle = COLORS[i];
    ctx.fillRect(f.X(fr[2]) - 4, f.Y(fr[3]) - 4, 8, 8);
  });
  if (outside) {  // a diverging path: say that it leaves the view rather than let it vanish
    const text = `↗ ${state.labels.outside || "the path leaves this view"}`;
    ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "left";
    ctx.fillStyle = "rgba(255,255,255,0.9)";
    ctx.fillRect(f.m.l + 4, f.h - f.m.b - 22, ctx.measureText(text).width + 10, 18);
    ctx.fillStyle = "#a40e26";
    ctx.fillText(text, f.m.l + 9, f.h - f.m.b - 9);
  }
  if (s.optimum) star(ctx, f.X(s.optimum.w), f.Y(s.optimum.b));
  const st = state.dragStart || s.start;
  ctx.fillStyle = "#fff"; ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2.5;
  ctx.beginPath(); ctx.arc(f.X(st[0]), f.Y(st[1]), 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  ctx.restore();
}

function surfaceBackground(S, f) {  // colours, contours and axes: drawn once per surface and canvas size
  const dpr = window.devicePixelRatio || 1, key = `${f.w}x${f.h}@${dpr}`;
  if (state.background && state.background.S === S && state.background.key === key) return state.background.canvas;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(f.w * dpr);
  canvas.height = Math.round(f.h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const n = S.w.length;
  let zmin = Infinity, zmax = -Infinity;
  for (const row of S.z) for (const v of row) { zmin = Math.min(zmin, v); zmax = Math.max(zmax, v); }
  const level = (v) => Math.log(v - zmin + 1e-4 * (zmax - zmin) + 1e-12);
  const l0 = level(zmin), l1 = level(zmax);
  const img = new ImageData(n, n);
  for (let k = 0; k < n; k++) for (let l = 0; l < n; l++) {
    const c = viridis(1 - (level(S.z[k][l]) - l0) / (l1 - l0 || 1));
    const o = ((n - 1 - k) * n + l) * 4;
    img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = n; off.height = n;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const x0 = f.X(S.w[0]), x1 = f.X(S.w[n - 1]), y0 = f.Y(S.b[n - 1]), y1 = f.Y(S.b[0]);
  ctx.drawImage(off, x0, y0, x1 - x0, y1 - y0);
  contours(ctx, f, S, level, l0, l1);
  axes(ctx, f, state.labels.weight || "weight w", state.labels.bias || "bias b");
  state.background = {S, key, canvas};
  return canvas;
}

function contours(ctx, f, S, level, l0, l1) {  // marching squares on 12 levels of the log loss
  const n = S.w.length;
  ctx.strokeStyle = "rgba(255,255,255,0.55)";
  ctx.lineWidth = 0.8;
  const L = S.z.map((row) => row.map(level));
  for (let q = 1; q < 16; q++) {
    const c = l0 + (l1 - l0) * q / 16;
    ctx.beginPath();
    for (let k = 0; k < n - 1; k++) for (let l = 0; l < n - 1; l++) {
      const v = [L[k][l], L[k][l + 1], L[k + 1][l + 1], L[k + 1][l]];
      const p = [[S.w[l], S.b[k]], [S.w[l + 1], S.b[k]], [S.w[l + 1], S.b[k + 1]], [S.w[l], S.b[k + 1]]];
      const pts = [];
      for (let e = 0; e < 4; e++) {
        const a = v[e], b = v[(e + 1) % 4];
        if ((a < c) !== (b < c)) {
          const t = (c - a) / (b - a), A = p[e], B = p[(e + 1) % 4];
          pts.push([A[0] + t * (B[0] - A[0]), A[1] + t * (B[1] - A[1])]);
        }
      }
      for (let j = 0; j + 1 < pts.length; j += 2) {
        ctx.moveTo(f.X(pts[j][0]), f.Y(pts[j][1]));
        ctx.lineTo(f.X(pts[j + 1][0]), f.Y(pts[j + 1][1]));
      }
    }
    ctx.stroke();
  }
}

function star(ctx, x, y) {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const r = k % 2 ? 5 : 12, a = -Math.PI / 2 + k * Math.PI / 5;
    ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
  }
  ctx.closePath();
  ctx.fillStyle = "#fff"; ctx.fill();
  ctx.strokeStyle = "#111"; ctx.lineWidth = 1.6; ctx.stroke();
}

function drawCurve() {
  const {ctx, w, h} = prepare($("curve"));
  const s = state.setup;
  if (!s) return;
  const opt = s.optimum ? s.optimum.loss : null;
  const series = [];
  state.runs.forEach((r, i) => {
    if (!r.frames.length) return;
    const losses = r.frames.map((fr) => [fr[0], fr[1]]).filter((p) => p[1] !== null && isFinite(p[1]));
    series.push({pts: losses, color: COLORS[i], dash: []});
    if (opt !== null) series.push({pts: losses.map(([e, v]) => [e, Math.max((v - opt) / Math.abs(opt || 1), 1e-12)]), color: COLORS[i], dash: [5, 4]});
  });
  const all = series.flatMap((q) => q.pts.map((p) => p[1])).filter((v) => v > 0 && isFinite(v));
  if (!all.length) return;
  const epochs = Math.max(settings().epochs, ...series.flatMap((q) => q.pts.map((p) => p[0])));
  const lo = Math.max(Math.min(...all), 1e-12), hi = Math.max(...all);
  const f = frame(w, h, [0, epochs], [lo / 1.5, hi * 1.5], true);
  axes(ctx, f, state.labels.epoch || "epoch", `${state.labels.loss_axis || "loss"} (log)`);
  clip(ctx, f);
  for (const q of series) {
    ctx.strokeStyle = q.color; ctx.lineWidth = 1.8; ctx.setLineDash(q.dash);
    ctx.beginPath();
    q.pts.forEach(([e, v], j) => { j ? ctx.lineTo(f.X(e), f.Y(v)) : ctx.moveTo(f.X(e), f.Y(v)); });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  if (opt !== null) {
    ctx.strokeStyle = "#111"; ctx.setLineDash([2, 3]);
    ctx.beginPath(); ctx.moveTo(f.X(0), f.Y(opt)); ctx.lineTo(f.X(epochs), f.Y(opt)); ctx.stroke(); ctx.setLineDash([]);
  }
  ctx.restore();
  legend(ctx, f, [[`${state.labels.loss_axis || "loss"} (—)`, "#555", false],
                  [`${state.labels.distance || "distance"} (- -)`, "#555", true]]);
}

function drawAll() {
  drawData();
  drawSurface();
  drawCurve();
  const m = state.marks;
  if (m && m.first !== undefined) {  // when the frames were on screen (bench/playground.py --browser)
    m.drawn = performance.now();
    if (m.firstDrawn === undefined) m.firstDrawn = m.drawn;
  }
}

// -- pointer: add and drag points, drag the start ------------------------------------------------------
function pointerXY(ev, canvas) {
  const r = canvas.getBoundingClientRect();
  return [ev.clientX - r.left, ev.clientY - r.top];
}

function bindData() {
  const canvas = $("data");
  let drag = null;
  canvas.addEventListener("pointerdown", (ev) => {
    const f = state.dataFrame, s = state.setup;
    if (!f || !s) return;
    const [px, py] = pointerXY(ev, canvas);
    let best = -1, bestD = 64;
    s.points.x.forEach((x, k) => {
      const d = (f.X(x) - px) ** 2 + (f.Y(s.points.y[k]) - py) ** 2;
      if (d < bestD) { bestD = d; best = k; }
    });
    if (best >= 0) {
      drag = best;
      canvas.setPointerCapture(ev.pointerId);
    } else {
      state.added.push([+f.invX(px).toPrecision(5), +f.invY(py).toPrecision(5)]);
      schedule(0);
    }
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (drag === null) return;
    const f = state.dataFrame, [px, py] = pointerXY(ev, canvas);
    state.setup.points.x[drag] = f.invX(px);
    state.setup.points.y[drag] = f.invY(py);
    queueDraw();
  });
  canvas.addEventListener("pointerup", () => {
    if (drag === null) return;
    const s = state.setup, idx = s.points.i[drag], base = s.points.n - state.added.length;
    const p = [+s.points.x[drag].toPrecision(5), +s.points.y[drag].toPrecision(5)];
    if (idx >= base) state.added[idx - base] = p; else state.moved[idx] = p;
    drag = null;
    schedule(0);
  });
}

function bindSurface() {
  const canvas = $("surface");
  let dragging = false;
  canvas.addEventListener("pointerdown", (ev) => {
    const f = state.surfaceFrame, s = state.setup;
    if (!f || !s) return;
    const [px, py] = pointerXY(ev, canvas);
    if ((f.X(s.start[0]) - px) ** 2 + (f.Y(s.start[1]) - py) ** 2 < 196) {
      dragging = true;
      canvas.setPointerCapture(ev.pointerId);
    }
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!dragging) return;
    const f = state.surfaceFrame, [px, py] = pointerXY(ev, canvas);
    state.dragStart = [f.invX(px), f.invY(py)];
    queueDraw();
  });
  canvas.addEventListener("pointerup", () => {
    if (!dragging) return;
    dragging = false;
    state.start = state.dragStart.map((v) => +v.toPrecision(5));
    state.dragStart = null;
    schedule(0);
  });
}

// -- language ----------------------------------------------------------------------------------------------
async function setLang(lang) {
  const resp = await fetch(`/api/labels?lang=${encodeURIComponent(lang)}`);
  const body = await resp.json();
  if (!resp.ok) { showError(body.error); return; }
  state.lang = body.lang;
  state.labels = body.labels;
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const text = state.labels[el.dataset.i18n];
    if (text) el.textContent = text;
  });
}

// -- start -------------------------------------------------------------------------------------------------
function init() {
  const slider = $("lr-slider"), lr = $("lr");
  slider.addEventListener("input", () => { lr.value = +Math.pow(10, +slider.value).toPrecision(3); throttle(); });
  const syncSlider = () => { if (+lr.value > 0) slider.value = Math.log10(+lr.value); };
  for (const el of document.querySelectorAll("#controls input:not([type=file]):not([type=range]), #controls select")) {
    el.addEventListener("change", () => { if (el === lr) syncSlider(); schedule(); });
    el.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { if (el === lr) syncSlider(); schedule(0); } });
  }
  for (const el of ["n", "noise", "seed"]) $(el).addEventListener("change", () => { state.added = []; state.moved = {}; });
  $("run").addEventListener("click", () => schedule(0));
  $("reset").addEventListener("click", () => { state.added = []; state.moved = {}; state.start = null; state.upload = null;
                                              $("upload").value = ""; schedule(0); });
  $("copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("code").textContent); } catch (e) {
      const range = document.createRange(); range.selectNodeContents($("code"));
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range); document.execCommand("copy");
    }
    $("copy").textContent = state.labels.copied || "Copied";
    setTimeout(() => { $("copy").textContent = state.labels.copy || "Copy"; }, 1200);
  });
  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    if (file.size > 10 * 1024 * 1024) {  // the server's bound, said before sending 10 MB to it
      showError(`${file.name} is larger than 10 MB; the playground takes CSV files up to 10 MB`);
      $("upload").value = "";
      return;
    }
    showError("");
    const resp = await fetch("/api/upload", {method: "POST", body: file, headers: {"X-Filename": file.name}});
    const body = await resp.json();
    if (!resp.ok) { showError(body.error); $("upload").value = ""; return; }
    state.upload = body; state.added = []; state.moved = {}; state.start = null;
    $("n").value = body.n;
    schedule(0);
  });
  $("lang").addEventListener("change", async () => { await setLang($("lang").value); schedule(0); });
  bindData();
  bindSurface();
  window.addEventListener("resize", queueDraw);
  const query = new URLSearchParams(location.search);  // ?n=200&loss=l2&lr=0.01: a link to these settings
  for (const id of ["loss", "optimizer", "lr", "epochs", "batch", "n", "noise", "seed", "delta", "tau"]) {
    if (query.has(id)) $(id).value = query.get(id);
  }
  if (query.get("standardize") === "1") $("standardize").checked = true;
  if (+$("lr").value > 0) slider.value = Math.log10(+$("lr").value);
  const wanted = query.get("lang") ||
                 ((navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en");
  setLang(wanted).then(() => run());
}

init();
