// mammo serve's page: posts the dropped DICOM files to /api/v1/predict and shows each view
// windowed (window/level adjustable, the file's VOI by default) with the heat map overlay
// and the boxes. Plain JavaScript, no libraries, nothing fetched but this server's API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { result: null, views: [] };

function setStatus(text, error) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

function fmt(p) { return (100 * p).toFixed(1) + " %"; }

// PS3.3 C.11.2.1.2 (VOI LUT Function LINEAR, LINEAR_EXACT, SIGMOID) to [0, 1].
function voi(fn, c, w) {
  if (fn === "SIGMOID") return (x) => 1 / (1 + Math.exp(-4 * (x - c) / w));
  if (fn === "LINEAR_EXACT") return (x) => Math.min(1, Math.max(0, (x - c) / w + 0.5));
  if (w <= 1) return (x) => (x <= c - 0.5 ? 0 : 1);
  return (x) => Math.min(1, Math.max(0, (x - (c - 0.5)) / (w - 1) + 0.5));
}

function paint(view) {
  const d = view.info.display;
  const wc = parseFloat($("wc").value), ww = parseFloat($("ww").value);
  const f = voi(view.fn, isFinite(wc) ? wc : d.window_center, isFinite(ww) && ww > 0 ? ww : d.window_width);
  const ctx = view.canvas.getContext("2d");
  const img = ctx.createImageData(d.width, d.height);
  const px = view.pixels, out = img.data;
  for (let i = 0; i < px.length; i++) {
    let g = f(px[i]);
    if (d.invert) g = 1 - g;
    const v = Math.round(255 * g);
    out[4 * i] = v; out[4 * i + 1] = v; out[4 * i + 2] = v; out[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function paintAll() { state.views.forEach(paint); }

function resetWindow() {
  const first = state.views[0];
  if (!first) return;
  $("wc").value = first.info.display.window_center;
  $("ww").value = first.info.display.window_width;
  $("wl-range").value = 0;
  state.views.forEach((v) => (v.fn = v.info.display.voi_function));
  paintAll();
}

function svgRect(cls, b) {
  const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  r.setAttribute("class", cls);
  r.setAttribute("x", b[0]); r.setAttribute("y", b[1]);
  r.setAttribute("width", Math.max(0, b[2] - b[0])); r.setAttribute("height", Math.max(0, b[3] - b[1]));
  return r;
}

function applyOverlay() {
  const op = $("opacity").value, heat = $("show-heat").checked;
  const box = $("show-box").checked, tbox = $("show-tbox").checked;
  document.querySelectorAll(".stage img.heat").forEach((i) => {
    i.style.opacity = heat ? op : 0;
  });
  document.querySelectorAll(".stage rect.box").forEach((r) => (r.style.display = box ? "" : "none"));
  document.querySelectorAll(".stage rect.tbox").forEach((r) => (r.style.display = tbox ? "" : "none"));
}

async function buildView(info) {
  const d = info.display;
  const fig = document.createElement("figure");
  const stage = document.createElement("div");
  stage.className = "stage";
  const canvas = document.createElement("canvas");
  canvas.width = d.width; canvas.height = d.height;
  stage.appendChild(canvas);
  const heat = document.createElement("img");
  heat.className = "heat";
  heat.alt = "heat map";
  const heatLoaded = new Promise((ok, fail) => { heat.onload = ok; heat.onerror = fail; });
  heat.src = info.heatmap;
  stage.appendChild(heat);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${info.columns} ${info.rows}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.appendChild(svgRect("box", info.box));
  if (info.threshold_box) svg.appendChild(svgRect("tbox", info.threshold_box));
  stage.appendChild(svg);
  fig.appendChild(stage);
  const cap = document.createElement("figcaption");
  const b = document.createElement("b");
  b.textContent = `${info.laterality || "?"} ${info.view || ""}`.trim() + ": " + fmt(info.probability);
  cap.appendChild(b);
  cap.appendChild(document.createTextNode(" · " + info.file));
  fig.appendChild(cap);
  $("views").appendChild(fig);
  const res = await fetch(d.pixels);
  if (!res.ok) throw new Error(`pixels of ${info.file}: HTTP ${res.status}`);
  const pixels = new Float32Array(await res.arrayBuffer());
  const view = { info, canvas, pixels, fn: d.voi_function };
  await heatLoaded;
  return view;
}

function showBreasts(result) {
  const body = document.querySelector("#breasts tbody");
  body.replaceChildren();
  for (const b of result.breasts) {
    const tr = document.createElement("tr");
    const cells = [b.laterality === "L" ? "left" : "right", fmt(b.probability),
      b.images.map((i) => result.images[i].view || "?").join(", ")];
    cells.forEach((t, k) => {
      const td = document.createElement("td");
      td.textContent = t;
      if (k === 1) td.className = "p";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  $("breasts").hidden = result.breasts.length === 0;
}

function showDownloads(result) {
  const blob = new Blob([JSON.stringify(result, null, 2)], { type: "application/json" });
  $("dl-json").href = URL.createObjectURL(blob);
  $("dl-sr").href = result.structured_report.url;
  const sc = $("dl-sc");
  sc.replaceChildren();
  result.images.forEach((im) => {
    const a = document.createElement("a");
    a.href = im.secondary_capture.url;
    a.textContent = `SC ${im.laterality || "?"} ${im.view || ""}`.trim();
    sc.appendChild(a);
  });
}

async function analyse(files) {
  if (!files.length) return;
  document.body.dataset.state = "working";
  setStatus(`Analysing ${files.length} file(s)…`);
  $("views").replaceChildren();
  state.views = [];
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const started = performance.now();
  try {
    const res = await fetch("/api/v1/predict", { method: "POST", body: form });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
    state.result = body;
    state.views = await Promise.all(body.images.map(buildView));
    $("controls").hidden = false;
    resetWindow();
    applyOverlay();
    showBreasts(body);
    showDownloads(body);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(`${body.images.length} image(s), ${body.breasts.length} breast(s) in ${secs} s · model ${body.model.architecture}, folds ${body.model.folds.join(", ")}`);
    document.body.dataset.views = String(state.views.length);
    document.body.dataset.state = "done";
  } catch (e) {
    setStatus(String(e.message || e), true);
    document.body.dataset.state = "error";
  }
}

function wire() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    analyse(Array.from(e.dataTransfer.files));
  });
  $("files").addEventListener("change", (e) => analyse(Array.from(e.target.files)));
  $("wc").addEventListener("change", paintAll);
  $("ww").addEventListener("change", paintAll);
  $("wl-range").addEventListener("input", (e) => {
    const first = state.views[0];
    if (!first) return;
    const d = first.info.display;
    $("wc").value = d.window_center + parseFloat(e.target.value) * d.window_width;
    paintAll();
  });
  $("voi-reset").addEventListener("click", resetWindow);
  ["opacity", "show-heat", "show-box", "show-tbox"].forEach((id) => $(id).addEventListener("input", applyOverlay));
  fetch("/api/v1/health").then((r) => r.json()).then((h) => {
    const m = h.model;
    $("model").textContent = `${m.architecture} · ${m.folds.length} fold(s) · ${m.input_size[0]}×${m.input_size[1]} · ${m.method} at ${m.layer} · run ${m.run}`;
  }).catch(() => ($("model").textContent = "model description unavailable"));
}

wire();
