// tinct page: pick a photo, colorize it (POST /api/colorize), compare before/after with a divider, place and edit
// color points with the model's suggestions (POST /api/suggest) and an ab gamut at the spot's lightness, global
// hints (palette, saturation), undo/redo, download. The photo is uploaded once: later requests send its id.
// No dependencies; nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const els = {
  drop: $("drop"), file: $("file"), dropError: $("dropError"), viewer: $("viewer"), frame: $("frame"),
  before: $("before"), after: $("after"), points: $("points"), spot: $("spot"), divider: $("divider"),
  tagAfter: $("tagAfter"), busy: $("busy"), busyText: $("busyText"), viewError: $("viewError"), help: $("help"),
  model: $("model"), modelInfo: $("modelInfo"), modelDetails: $("modelDetails"), modelTech: $("modelTech"),
  rf: $("rf"), rfOut: $("rfOut"), pc: $("pc"), pcOut: $("pcOut"), pcField: $("pcField"),
  pointsCard: $("pointsCard"), pointsHelp: $("pointsHelp"), spotCard: $("spotCard"), spotTitle: $("spotTitle"),
  suggestions: $("suggestions"), gamut: $("gamut"), pointColor: $("pointColor"), pointSize: $("pointSize"),
  sizeOut: $("sizeOut"), deletePoint: $("deletePoint"), pointList: $("pointList"), undo: $("undo"), redo: $("redo"),
  clearPoints: $("clearPoints"), globalCard: $("globalCard"), paletteField: $("paletteField"),
  paletteDrop: $("paletteDrop"), paletteFile: $("paletteFile"), palette: $("palette"), paletteForm: $("paletteForm"),
  paletteText: $("paletteText"), paletteError: $("paletteError"), sat: $("sat"), satOut: $("satOut"),
  restore: $("restore"), recolor: $("recolor"), download: $("download"), newPhoto: $("newPhoto"), status: $("status"),
};

const state = {
  file: null,          // the File the user gave
  photoId: null,       // the server's id for the decoded photo (sent instead of the file); null: upload it
  beforeUrl: null,     // object URLs we made, revoked when replaced
  afterUrl: null,
  points: [],          // {id, fx, fy, color, size}: position as a fraction of the photo; size in network cells
  nextId: 1,
  selected: null,      // id of the point being edited
  spot: null,          // {fx, fy}: a clicked spot with no point yet
  spotL: 50,           // lightness of the spot/point being edited (for the gamut)
  suggestions: [],
  undo: [], redo: [],  // snapshots of `points`
  palette: [],         // global hint colors, "#rrggbb"
  models: [], limits: {},
  request: null,       // AbortController of the colorization in flight
  suggestRequest: null,
  timer: null,
  beforeBroken: false, // the browser cannot decode the upload (TIFF)
  pos: 50,             // divider position, % from the left
};

// ---------------------------------------------------------------- plain-words errors
// The API's messages name fields ("image: ...", "hints: point 2: ..."): right for programs, noise for people.
function plainError(status, message) {
  const mb = state.limits.max_upload_bytes ? Math.round(state.limits.max_upload_bytes / 2 ** 20) : null;
  const mp = state.limits.max_pixels ? Math.round(state.limits.max_pixels / 1e6) : null;
  if (status === 415) return "This file is not a photo tinct can open. Try a JPEG or PNG file.";
  if (status === 413) {
    if (/pixels/.test(message) && mp) return `This photo is too large: this server takes photos up to ${mp} megapixels.`;
    return mb ? `This file is too large: this server takes files up to ${mb} MB.` : "This file is too large.";
  }
  if (status === 503) return "The server is busy right now. Try again in a moment.";
  if (/cannot (decode|read image header)|empty upload|no pixels/.test(message)) {
    return "This photo could not be read: the file may be damaged or incomplete.";
  }
  let text = String(message || "Something went wrong.");
  for (let i = 0; i < 3; i++) text = text.replace(/^(?:[a-z_]+(?:, [a-z_]+)?|hints: point \d+|point \d+): /i, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

class ApiError extends Error {
  constructor(status, message) { super(plainError(status, message)); this.status = status; }
}

async function apiError(r) {
  let msg = r.statusText;
  try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
  return new ApiError(r.status, msg);
}

function networkMessage(e) {
  return e instanceof ApiError ? e.message : "Could not reach the tinct server. Is it still running?";
}

// ---------------------------------------------------------------- server info
async function loadModels() {
  try {
    const r = await fetch("/api/models");
    if (!r.ok) throw await apiError(r);
    const info = await r.json();
    state.models = info.models;
    state.limits = info.limits || {};
    els.model.replaceChildren(...info.models.map((m) => {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = m.name + (m.hints ? " · color points" : "");
      o.selected = m.name === info.default;
      return o;
    }));
    const rf = info.render_factor;
    Object.assign(els.rf, { min: rf.min, max: rf.max, value: rf.default });
    els.rfOut.textContent = rf.default;
    describeModel();
  } catch (e) {
    showError(networkMessage(e));
  }
}

function currentModel() {
  return state.models.find((m) => m.name === els.model.value) || null;
}

function takesPoints() {
  const m = currentModel();
  return !!(m && m.hints);
}

function hasBins() {
  const m = currentModel();
  return !!(m && m.head === "classification");
}

// "trained on 10,215 photos; takes color points", the rest behind "Technical details"
function describeModel() {
  const m = currentModel();
  if (!m) return;
  const said = [];
  const count = /([\d][\d,.]*)\s+(?:color\s+)?(?:photos|images)/i.exec(m.trained_on || "");
  if (count) said.push(`Trained on ${count[1]} photos`);
  else if (m.trained_on && m.trained_on.length <= 80) said.push(`Trained on ${m.trained_on}`);
  else said.push(m.steps ? "A trained model" : "An untrained model");
  said.push(m.hints ? "takes color points" : "does not take color points");
  if (m.head === "classification") said.push("suggests colors where you click");
  els.modelInfo.textContent = said.join("; ") + ".";
  const tech = [["Family", m.family], ["Output", m.head === "classification" ? "classification over ab bins" : "regression of ab"],
                ["Training steps", m.steps ? m.steps.toLocaleString() : "0"], ["Trained on", m.trained_on || "—"]];
  if (m.prior_correction !== null && m.prior_correction !== undefined) tech.push(["Prior correction", String(m.prior_correction)]);
  els.modelTech.replaceChildren(...tech.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  // bold <-> safe: the prior correction of a classification head, starting at the model's own
  els.pcField.hidden = !hasBins();
  if (hasBins()) {
    els.pc.value = m.prior_correction;
    els.pcOut.textContent = Number(els.pc.value).toFixed(2);
  }
  els.paletteField.hidden = !hasBins();  // a palette reweights the color distribution: classification only
  const ok = m.hints;
  els.pointsCard.classList.toggle("disabled", !ok);
  els.pointsHelp.textContent = ok
    ? "Click the photo where you know the color: tinct suggests colors for that spot. Drag a point to move it; click it to change it."
    : "This model does not take color points; choose one marked “color points”.";
  els.frame.classList.toggle("no-points", !ok);
  els.help.textContent = ok ? "Drag the divider to compare · click the photo to add a color point"
                            : "Drag the divider to compare";
  if (!ok) closeSpot();
  renderPoints();
}

// ---------------------------------------------------------------- choosing a photo
// what belongs to the photo on screen: its server id, points, history, spot panel and object URLs
function forgetPhoto(file) {
  state.file = file;
  state.photoId = null;
  state.points = [];
  state.undo = []; state.redo = [];
  closeSpot();
  revoke("beforeUrl");
  revoke("afterUrl");
}

function setPhoto(file) {
  if (!file) return;
  clearError();
  forgetPhoto(file);
  state.beforeUrl = URL.createObjectURL(file);
  state.beforeBroken = false;
  els.before.classList.remove("gray");
  els.before.hidden = false;
  els.frame.classList.remove("empty");
  els.before.src = state.beforeUrl;
  els.after.hidden = true;
  els.after.removeAttribute("src");
  els.divider.hidden = true;
  els.tagAfter.hidden = true;
  els.drop.hidden = true;
  els.viewer.hidden = false;
  els.newPhoto.disabled = false;
  setDownload(null);
  setPos(50);
  renderPoints();
  colorize();
}

function revoke(key) {
  if (state[key]) URL.revokeObjectURL(state[key]);
  state[key] = null;
}

// Browsers cannot show every format we accept (TIFF): then "before" is the result in grayscale,
// which is exact, since the result keeps the photo's luminance.
els.before.addEventListener("error", () => {
  if (!state.file || els.before.classList.contains("gray")) return;
  state.beforeBroken = true;
  if (state.afterUrl) useResultAsBefore(state.afterUrl);
  else { els.before.hidden = true; els.frame.classList.add("empty"); }
});

function useResultAsBefore(url) {
  els.before.classList.add("gray");
  els.before.hidden = false;
  els.frame.classList.remove("empty");
  els.before.src = url;
}

els.file.addEventListener("change", () => {
  setPhoto(els.file.files[0]);
  els.file.value = "";
});

function isOver(el, e) {
  return el.contains(e.target);
}

for (const target of [els.drop, document.body]) {
  target.addEventListener("dragover", (e) => { e.preventDefault(); if (!isOver(els.paletteDrop, e)) els.drop.classList.add("over"); });
  target.addEventListener("dragleave", () => els.drop.classList.remove("over"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    els.drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (!f) return;
    if (isOver(els.paletteDrop, e)) paletteFromPhoto(f);  // a reference photo, not the photo to colorize
    else setPhoto(f);
  });
}

function resetPhoto() {
  if (state.request) state.request.abort();
  forgetPhoto(null);
  els.viewer.hidden = true;
  els.drop.hidden = false;
  els.newPhoto.disabled = true;
  setDownload(null);
  renderPoints();
}

els.newPhoto.addEventListener("click", () => {
  resetPhoto();
  clearError();
  setStatus("Choose a photo to begin.");
  els.file.click();
});

// Show the photo as large as the stage allows (small scans up to 3x), the result laid exactly over it.
function fitPhoto() {
  const img = els.before;
  if (!img.naturalWidth || els.viewer.hidden) return;
  const stage = els.viewer.parentElement.getBoundingClientRect();
  const top = els.viewer.getBoundingClientRect().top + window.scrollY;
  const availW = stage.width;
  const availH = Math.max(240, window.innerHeight - top - 56);
  const scale = Math.min(availW / img.naturalWidth, availH / img.naturalHeight, 3);
  img.style.width = Math.floor(img.naturalWidth * scale) + "px";
}
els.before.addEventListener("load", fitPhoto);
window.addEventListener("resize", fitPhoto);

// ---------------------------------------------------------------- requests
function photoSize() {
  // natural size of what the browser decoded (EXIF orientation applied, as the server does)
  const img = state.beforeBroken ? els.after : els.before;
  return img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;
}

function toPixels(p, size) {
  const [w, h] = size;
  return [Math.min(w - 1, Math.max(0, Math.floor(p.fx * w))), Math.min(h - 1, Math.max(0, Math.floor(p.fy * h)))];
}

// A point of size s covers about s x s cells of the network's input (1x1 .. 9x9 patches, as Zhang et al. 2017).
function radiusFor(size, dims) {
  const cell = Math.sqrt(dims[0] * dims[1]) / (Number(els.rf.value) * 16);
  return size <= 1 ? 0 : Math.max(1, Math.round((size / 2) * Math.max(1, cell)));
}

function hintsJson(exceptId = null) {
  const pts = state.points.filter((p) => p.id !== exceptId);
  if (!pts.length || !takesPoints()) return null;
  const size = photoSize();
  if (!size) return null;
  return JSON.stringify(pts.map((p) => {
    const [x, y] = toPixels(p, size);
    return { x, y, color: p.color, radius: radiusFor(p.size, size) };
  }));
}

// POST a form built by `fill(body)` plus the photo (its id when the server keeps it, else the file).
// A 410 means the server let the photo go: upload it again, once.
async function postWithPhoto(url, fill, signal) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const body = new FormData();
    if (state.photoId) body.append("photo", state.photoId);
    else body.append("image", state.file, state.file.name || "photo");
    fill(body);
    const r = await fetch(url, { method: "POST", body, signal });
    if (r.status === 410 && state.photoId) { state.photoId = null; continue; }
    return r;
  }
  throw new ApiError(500, "the photo could not be sent");
}

function scheduleColorize(delay = 200) {
  clearTimeout(state.timer);
  state.timer = setTimeout(colorize, delay);
}

async function colorize() {
  if (!state.file) return;
  clearTimeout(state.timer);
  if (state.request) state.request.abort();
  const ctrl = new AbortController();
  state.request = ctrl;
  const hints = hintsJson();
  const npoints = hints ? state.points.length : 0;
  clearError();
  els.busy.hidden = false;
  els.busyText.textContent = state.afterUrl ? "Updating…" : "Colorizing…";
  setStatus("Working…");
  const t0 = performance.now();
  try {
    const r = await postWithPhoto("/api/colorize", (body) => {
      if (els.model.value) body.append("model", els.model.value);
      body.append("render_factor", els.rf.value);
      if (!els.pcField.hidden) body.append("prior_correction", els.pc.value);
      if (hints) body.append("hints", hints);
      if (state.palette.length && hasBins()) body.append("palette", state.palette.join(","));
      if (Number(els.sat.value) !== 1) body.append("saturation", els.sat.value);
      if (els.restore.checked) body.append("restore", "true");
      if (els.recolor.checked) body.append("recolor", "true");
    }, ctrl.signal);
    if (!r.ok) throw await apiError(r);
    const blob = await r.blob();
    if (ctrl !== state.request) return;
    state.photoId = r.headers.get("X-Tinct-Photo") || state.photoId;
    revoke("afterUrl");
    state.afterUrl = URL.createObjectURL(blob);
    await showAfter(state.afterUrl);
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    if (r.headers.get("X-Tinct-Colors") === "own") {
      setStatus(`${r.headers.get("X-Tinct-Size") || ""} already in color: its own colors restored in ${secs} s ` +
                "(check “Recolor a color photo” to color it anew).");
    } else setStatus(`${r.headers.get("X-Tinct-Size") || ""} colorized by ${r.headers.get("X-Tinct-Model")} ` +
              `at detail ${r.headers.get("X-Tinct-Render-Factor")} in ${secs} s` +
              (npoints ? ` with ${npoints} color point${npoints > 1 ? "s" : ""}` : "") + ".");
    setDownload(state.afterUrl);
  } catch (e) {
    if (e.name === "AbortError") return;
    if (state.afterUrl) {
      setStatus("Showing the previous result.");
      showError(networkMessage(e));
    } else {  // nothing to show: back to choosing a photo; the message is where the eye is, on the drop zone
      resetPhoto();
      setStatus("Choose another photo.");
      showError(networkMessage(e));
    }
  } finally {
    if (ctrl === state.request) {
      state.request = null;
      els.busy.hidden = true;
    }
  }
}

function showAfter(url) {
  return new Promise((resolve) => {
    els.after.onload = () => resolve();
    els.after.onerror = () => resolve();
    els.after.src = url;
    els.after.hidden = false;
    els.divider.hidden = false;
    els.tagAfter.hidden = false;
    if (state.beforeBroken) useResultAsBefore(url);
  });
}

function setDownload(url) {
  const a = els.download;
  if (url) {
    const base = (state.file && state.file.name || "photo").replace(/\.[^.]*$/, "");
    a.href = url;
    a.download = `${base}-color.png`;
    a.classList.remove("disabled");
    a.setAttribute("aria-disabled", "false");
  } else {
    a.href = "#";
    a.classList.add("disabled");
    a.setAttribute("aria-disabled", "true");
  }
}

els.model.addEventListener("change", () => { describeModel(); colorize(); });
els.rf.addEventListener("input", () => { els.rfOut.textContent = els.rf.value; });
els.rf.addEventListener("change", () => colorize());
els.pc.addEventListener("input", () => { els.pcOut.textContent = Number(els.pc.value).toFixed(2); });
els.pc.addEventListener("change", () => colorize());
els.restore.addEventListener("change", () => colorize());
els.recolor.addEventListener("change", () => colorize());
els.sat.addEventListener("input", () => { els.satOut.textContent = Number(els.sat.value).toFixed(2); });
els.sat.addEventListener("change", () => colorize());

// ---------------------------------------------------------------- before/after divider
function setPos(pct) {
  state.pos = Math.max(0, Math.min(100, pct));
  els.frame.style.setProperty("--pos", state.pos + "%");
  els.divider.setAttribute("aria-valuenow", String(Math.round(state.pos)));
}

function fractionAt(e) {
  const r = els.frame.getBoundingClientRect();
  return [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height];
}

els.divider.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  e.stopPropagation();
  els.divider.setPointerCapture(e.pointerId);
  const move = (ev) => setPos(fractionAt(ev)[0] * 100);
  const up = () => {
    els.divider.removeEventListener("pointermove", move);
    els.divider.removeEventListener("pointerup", up);
    els.divider.removeEventListener("pointercancel", up);
  };
  els.divider.addEventListener("pointermove", move);
  els.divider.addEventListener("pointerup", up);
  els.divider.addEventListener("pointercancel", up);
});
els.divider.addEventListener("click", (e) => e.stopPropagation());
els.divider.addEventListener("keydown", (e) => {
  const step = e.shiftKey ? 10 : 2;
  if (e.key === "ArrowLeft") setPos(state.pos - step);
  else if (e.key === "ArrowRight") setPos(state.pos + step);
  else if (e.key === "Home") setPos(0);
  else if (e.key === "End") setPos(100);
  else return;
  e.preventDefault();
});

// ---------------------------------------------------------------- points: edits, undo/redo
const snapshot = () => JSON.stringify(state.points);

// Every edit goes through here: the state before it is kept for undo, and the photo is colorized again.
function edit(change) {
  const before = snapshot();
  change();
  if (snapshot() === before) return;
  state.undo.push(before);
  if (state.undo.length > 200) state.undo.shift();
  state.redo = [];
  renderPoints();
  scheduleColorize();
}

function restore(from, to) {
  if (!from.length) return;
  to.push(snapshot());
  state.points = JSON.parse(from.pop());
  if (!state.points.some((p) => p.id === state.selected)) closeSpot();
  renderPoints();
  colorize();
}
els.undo.addEventListener("click", () => restore(state.undo, state.redo));
els.redo.addEventListener("click", () => restore(state.redo, state.undo));

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea") && e.target.type !== "range") return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") { restore(e.shiftKey ? state.redo : state.undo, e.shiftKey ? state.undo : state.redo); e.preventDefault(); }
  else if ((e.ctrlKey || e.metaKey) && key === "y") { restore(state.redo, state.undo); e.preventDefault(); }
  else if ((key === "delete" || key === "backspace") && state.selected !== null) { deleteSelected(); e.preventDefault(); }
  else if (key === "escape") closeSpot();
});

function selectedPoint() {
  return state.points.find((p) => p.id === state.selected) || null;
}

// Click on the photo: a spot to color. Suggestions come first; picking one places the point.
els.frame.addEventListener("click", (e) => {
  if (!takesPoints() || !state.file || e.target.closest(".point")) return;
  const [fx, fy] = fractionAt(e);
  if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
  openSpot({ fx, fy }, null);
});

function openSpot(spot, pointId) {
  state.spot = pointId === null ? spot : null;
  state.selected = pointId;
  els.spotCard.hidden = false;
  els.spotTitle.textContent = pointId === null ? "Colors for this spot: pick one" : "This point: change its color or size";
  els.deletePoint.hidden = pointId === null;
  const p = selectedPoint();
  if (p) { els.pointColor.value = p.color; els.pointSize.value = p.size; }
  els.sizeOut.textContent = `${els.pointSize.value}×${els.pointSize.value}`;
  renderPoints();
  fetchSuggestions(spot, pointId);
}

function closeSpot() {
  state.spot = null;
  state.selected = null;
  state.suggestions = [];
  if (state.suggestRequest) state.suggestRequest.abort();
  els.spotCard.hidden = true;
  els.suggestions.replaceChildren();
  renderPoints();
}

async function fetchSuggestions(spot, pointId) {
  if (state.suggestRequest) state.suggestRequest.abort();
  els.suggestions.replaceChildren();
  state.suggestions = [];
  const size = photoSize();
  if (!size || !hasBins()) { drawGamut(); return; }
  const ctrl = new AbortController();
  state.suggestRequest = ctrl;
  els.suggestions.classList.add("loading");
  const [x, y] = toPixels(spot, size);
  try {
    const hints = hintsJson(pointId);  // the model sees the other points, not the one being changed
    const r = await postWithPhoto("/api/suggest", (body) => {
      body.append("x", x);
      body.append("y", y);
      if (els.model.value) body.append("model", els.model.value);
      body.append("render_factor", els.rf.value);
      if (hints) body.append("hints", hints);
    }, ctrl.signal);
    if (!r.ok) throw await apiError(r);
    const info = await r.json();
    if (ctrl !== state.suggestRequest) return;
    state.photoId = info.photo || state.photoId;
    state.spotL = info.lightness;
    state.suggestions = info.suggestions;
    els.suggestions.replaceChildren(...info.suggestions.map((s) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "suggestion";
      b.title = `${s.color}: ${Math.round(s.probability * 100)} % likely`;
      b.dataset.color = s.color;
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = s.color;
      const pct = document.createElement("span");
      pct.textContent = s.probability >= 0.01 ? `${Math.round(s.probability * 100)}%` : "<1%";
      b.append(sw, pct);
      b.addEventListener("click", () => pick(s.color));
      return b;
    }));
    drawGamut();
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(networkMessage(e));
  } finally {
    if (ctrl === state.suggestRequest) { state.suggestRequest = null; els.suggestions.classList.remove("loading"); }
  }
}

// A color chosen (a suggestion, the gamut or the color input): place the point, or recolor the selected one.
function pick(color) {
  els.pointColor.value = color;
  const size = Number(els.pointSize.value);
  if (state.selected !== null) {
    edit(() => { const p = selectedPoint(); if (p) p.color = color; });
  } else if (state.spot) {
    const id = state.nextId++;
    const { fx, fy } = state.spot;
    edit(() => state.points.push({ id, fx, fy, color, size }));
    state.spot = null;
    state.selected = id;  // further picks change this point
    els.spotTitle.textContent = "This point: change its color or size";
    els.deletePoint.hidden = false;
  }
  renderPoints();
  drawGamut();
}

els.pointColor.addEventListener("change", () => pick(els.pointColor.value));
els.pointSize.addEventListener("input", () => { els.sizeOut.textContent = `${els.pointSize.value}×${els.pointSize.value}`; });
els.pointSize.addEventListener("change", () => {
  if (state.selected === null) return;
  const size = Number(els.pointSize.value);
  edit(() => { const p = selectedPoint(); if (p) p.size = size; });
});

function deleteSelected() {
  const id = state.selected;
  if (id === null) return;
  closeSpot();
  edit(() => { state.points = state.points.filter((p) => p.id !== id); });
}
els.deletePoint.addEventListener("click", deleteSelected);

els.clearPoints.addEventListener("click", () => {
  closeSpot();
  edit(() => { state.points = []; });
});

// Drag a point to move it; a press without a move selects it.
function startDrag(e, p, el) {
  e.preventDefault();
  e.stopPropagation();
  el.setPointerCapture(e.pointerId);
  const before = snapshot();
  const start = [e.clientX, e.clientY];
  let moved = false;
  const move = (ev) => {
    if (!moved && Math.hypot(ev.clientX - start[0], ev.clientY - start[1]) < 4) return;
    moved = true;
    const [fx, fy] = fractionAt(ev);
    p.fx = Math.max(0, Math.min(1, fx));
    p.fy = Math.max(0, Math.min(1, fy));
    el.style.left = p.fx * 100 + "%";
    el.style.top = p.fy * 100 + "%";
  };
  const up = () => {
    el.removeEventListener("pointermove", move);
    el.removeEventListener("pointerup", up);
    el.removeEventListener("pointercancel", up);
    if (moved) {
      state.undo.push(before);
      state.redo = [];
      renderPoints();
      colorize();
      if (state.selected === p.id) fetchSuggestions(p, p.id);
    } else {
      openSpot(p, p.id);
    }
  };
  el.addEventListener("pointermove", move);
  el.addEventListener("pointerup", up);
  el.addEventListener("pointercancel", up);
}

function renderPoints() {
  const show = takesPoints();
  const pts = show ? state.points : [];
  els.points.replaceChildren(...pts.map((p, i) => {
    const d = document.createElement("button");
    d.type = "button";
    d.className = "point" + (p.id === state.selected ? " selected" : "");
    d.title = `${p.color}, ${p.size}×${p.size}: drag to move, click to change`;
    d.setAttribute("aria-label", `Color point ${i + 1}: ${p.color}`);
    d.dataset.id = p.id;
    const px = 12 + 2 * p.size;
    Object.assign(d.style, { left: p.fx * 100 + "%", top: p.fy * 100 + "%", background: p.color,
                             width: px + "px", height: px + "px", margin: `${-px / 2}px 0 0 ${-px / 2}px` });
    d.addEventListener("pointerdown", (e) => startDrag(e, p, d));
    d.addEventListener("click", (e) => e.stopPropagation());
    return d;
  }));
  els.spot.hidden = !(show && state.spot);
  if (state.spot) {
    els.spot.style.left = state.spot.fx * 100 + "%";
    els.spot.style.top = state.spot.fy * 100 + "%";
  }
  els.pointList.replaceChildren(...pts.map((p) => {
    const li = document.createElement("li");
    li.className = p.id === state.selected ? "selected" : "";
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = p.color;
    li.append(sw, `${p.color} · ${p.size}×${p.size}`);
    li.addEventListener("click", () => openSpot(p, p.id));
    return li;
  }));
  els.clearPoints.disabled = !(show && state.points.length);
  els.undo.disabled = !state.undo.length;
  els.redo.disabled = !state.redo.length;
}

// ---------------------------------------------------------------- the ab gamut at the spot's lightness
// Same formulas as tinct.color (sRGB, D65): a click anywhere on the gamut is a color that exists at this lightness.
const XYZ_TO_RGB = [[3.240481343, -1.537151516, -0.498536326], [-0.96925495, 1.875990001, 0.041555927],
                    [0.055646639, -0.204041338, 1.05731107]];
const RGB_TO_XYZ = [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];
const WHITE = [0.95047, 1.0, 1.08883];
const EPS = 216 / 24389, KAPPA = 24389 / 27, AB = 110;

function labToRgb(L, a, b) {  // -> [r, g, b] in [0, 1], unclipped (out of gamut: outside [0, 1])
  const fy = (L + 16) / 116, f = [fy + a / 500, fy, fy - b / 200];
  const xyz = f.map((t, i) => (t ** 3 > EPS ? t ** 3 : (116 * t - 16) / KAPPA) * WHITE[i]);
  return XYZ_TO_RGB.map((row) => {
    const c = row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2];
    return c > 0.0031308 ? 1.055 * Math.max(c, 0) ** (1 / 2.4) - 0.055 : 12.92 * c;
  });
}

function rgbToLab(rgb) {
  const lin = rgb.map((c) => (c > 0.04045 ? ((c + 0.055) / 1.055) ** 2.4 : c / 12.92));
  const f = RGB_TO_XYZ.map((row, i) => {
    const t = (row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]) / WHITE[i];
    return t > EPS ? Math.cbrt(t) : (KAPPA * t + 16) / 116;
  });
  return [116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])];
}

const hexToRgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
const rgbToHex = (rgb) => "#" + rgb.map((c) => Math.round(Math.min(1, Math.max(0, c)) * 255).toString(16).padStart(2, "0")).join("");

function gamutXY(a, b) {
  const n = els.gamut.width;
  return [(a + AB) / (2 * AB) * n, (AB - b) / (2 * AB) * n];
}

function drawGamut() {
  const cv = els.gamut, n = cv.width, ctx = cv.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const a = (x + 0.5) / n * 2 * AB - AB, b = AB - (y + 0.5) / n * 2 * AB;
      const rgb = labToRgb(state.spotL, a, b);
      const k = 4 * (y * n + x);
      if (rgb.every((c) => c >= -1e-3 && c <= 1.001)) {
        img.data[k] = rgb[0] * 255; img.data[k + 1] = rgb[1] * 255; img.data[k + 2] = rgb[2] * 255; img.data[k + 3] = 255;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  const ring = (hex, r, color, width) => {
    const [, a, b] = rgbToLab(hexToRgb(hex));
    const [x, y] = gamutXY(a, b);
    ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.lineWidth = width; ctx.strokeStyle = color; ctx.stroke();
  };
  for (const s of state.suggestions) ring(s.color, 4, "#000a", 1.5);
  const p = selectedPoint();
  if (p) { ring(p.color, 6, "#fff", 2.5); ring(p.color, 7.5, "#000", 1); }
}

els.gamut.addEventListener("click", (e) => {
  const r = els.gamut.getBoundingClientRect();
  const a = (e.clientX - r.left) / r.width * 2 * AB - AB, b = AB - (e.clientY - r.top) / r.height * 2 * AB;
  const rgb = labToRgb(state.spotL, a, b);
  if (!rgb.every((c) => c >= -1e-3 && c <= 1.001)) return;  // no such color at this lightness
  pick(rgbToHex(rgb));
});

// ---------------------------------------------------------------- global hints: palette, saturation
function setPalette(colors) {
  state.palette = colors.slice(0, 16);
  els.palette.replaceChildren(...state.palette.map((c, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "palette-color";
    b.style.background = c;
    b.title = `${c}: click to remove`;
    b.addEventListener("click", () => { setPalette(state.palette.filter((_, j) => j !== i)); colorize(); });
    return b;
  }));
  els.paletteText.value = state.palette.join(", ");
}

async function paletteFromPhoto(file) {
  els.paletteError.hidden = true;
  const body = new FormData();
  body.append("image", file, file.name || "reference");
  try {
    const r = await fetch("/api/palette", { method: "POST", body });
    if (!r.ok) throw await apiError(r);
    setPalette((await r.json()).colors);
    colorize();
  } catch (e) {
    els.paletteError.textContent = networkMessage(e);
    els.paletteError.hidden = false;
  }
}

els.paletteFile.addEventListener("change", () => {
  if (els.paletteFile.files[0]) paletteFromPhoto(els.paletteFile.files[0]);
  els.paletteFile.value = "";
});
for (const ev of ["dragover", "dragenter"]) {
  els.paletteDrop.addEventListener(ev, (e) => { e.preventDefault(); els.paletteDrop.classList.add("over"); });
}
els.paletteDrop.addEventListener("dragleave", () => els.paletteDrop.classList.remove("over"));
els.paletteDrop.addEventListener("drop", () => els.paletteDrop.classList.remove("over"));

els.paletteForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const parts = els.paletteText.value.split(/[\s,;]+/).filter(Boolean);
  const bad = parts.find((p) => !/^#?([0-9a-f]{6}|[0-9a-f]{3})$/i.test(p));
  if (bad) {
    els.paletteError.textContent = `“${bad}” is not a color: write colors like #8a2b1e.`;
    els.paletteError.hidden = false;
    return;
  }
  els.paletteError.hidden = true;
  setPalette(parts.map((p) => {
    const h = p.replace("#", "");
    return "#" + (h.length === 3 ? [...h].map((c) => c + c).join("") : h).toLowerCase();
  }));
  colorize();
});

// ---------------------------------------------------------------- messages
function setStatus(text) { els.status.textContent = text; }
function showError(text) {
  const where = els.viewer.hidden ? els.dropError : els.viewError;  // where the eye is
  where.textContent = text;
  where.hidden = false;
}
function clearError() {
  for (const el of [els.dropError, els.viewError]) { el.hidden = true; el.textContent = ""; }
}

loadModels();
