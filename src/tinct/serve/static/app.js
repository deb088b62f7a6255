// tinct page: pick a photo, POST it to /api/colorize, show before/after with a draggable divider,
// place color points (sent as the `hints` JSON in photo pixels), download the PNG. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const els = {
  drop: $("drop"), file: $("file"), viewer: $("viewer"), frame: $("frame"), before: $("before"), after: $("after"),
  points: $("points"), divider: $("divider"), tagAfter: $("tagAfter"), busy: $("busy"), busyText: $("busyText"),
  model: $("model"), modelInfo: $("modelInfo"), rf: $("rf"), rfOut: $("rfOut"), pointsCard: $("pointsCard"),
  pc: $("pc"), pcOut: $("pcOut"), pcField: $("pcField"), restore: $("restore"),
  pointColor: $("pointColor"), pointsHelp: $("pointsHelp"), pointList: $("pointList"), clearPoints: $("clearPoints"),
  download: $("download"), newPhoto: $("newPhoto"), status: $("status"), error: $("error"), help: $("help"),
};

const state = {
  file: null,          // the File the user gave
  beforeUrl: null,     // object URLs we made, revoked when replaced
  afterUrl: null,
  points: [],          // {fx, fy, color}: position as a fraction of the photo, so it survives any display size
  models: [],
  request: null,       // AbortController of the request in flight
  timer: null,
  beforeBroken: false, // the browser cannot decode the upload (TIFF)
  pos: 50,             // divider position, % from the left
};

// ---------------------------------------------------------------- server info
async function loadModels() {
  try {
    const r = await fetch("/api/models");
    const info = await r.json();
    if (!r.ok) throw new Error(info.error || r.statusText);
    state.models = info.models;
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
    showError("Could not reach the server: " + e.message);
  }
}

function currentModel() {
  return state.models.find((m) => m.name === els.model.value) || null;
}

function takesPoints() {
  const m = currentModel();
  return !!(m && m.hints);
}

function describeModel() {
  const m = currentModel();
  if (!m) return;
  const trained = m.steps ? `${m.steps.toLocaleString()} training steps` : "untrained";
  els.modelInfo.textContent = `${m.family}, ${m.head} head, ${trained}.`;
  // bold <-> safe: the prior correction of a classification head, starting at the model's own
  const bins = m.prior_correction !== null && m.prior_correction !== undefined;
  els.pcField.hidden = !bins;
  if (bins) {
    els.pc.value = m.prior_correction;
    els.pcOut.textContent = Number(els.pc.value).toFixed(2);
  }
  const ok = m.hints;
  els.pointsCard.classList.toggle("disabled", !ok);
  els.pointColor.disabled = !ok;
  els.pointsHelp.textContent = ok
    ? "Pick a color, then click the photo where it belongs. Click a point to remove it."
    : "This model does not take color points; choose one marked “color points”.";
  els.frame.classList.toggle("no-points", !ok);
  els.help.textContent = ok ? "Drag the divider to compare · click the photo to add a color point"
                            : "Drag the divider to compare";
  renderPoints();
}

// ---------------------------------------------------------------- choosing a photo
function setPhoto(file) {
  if (!file) return;
  clearError();
  state.file = file;
  state.points = [];
  revoke("beforeUrl");
  revoke("afterUrl");
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

for (const target of [els.drop, document.body]) {
  target.addEventListener("dragover", (e) => { e.preventDefault(); els.drop.classList.add("over"); });
  target.addEventListener("dragleave", () => els.drop.classList.remove("over"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    els.drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) setPhoto(f);
  });
}

function resetPhoto() {
  if (state.request) state.request.abort();
  state.file = null;
  state.points = [];
  revoke("beforeUrl");
  revoke("afterUrl");
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

// ---------------------------------------------------------------- colorizing
function photoSize() {
  // natural size of what the browser decoded (EXIF orientation applied, as the server does)
  const img = state.beforeBroken ? els.after : els.before;
  return img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;
}

function hintsJson() {
  if (!state.points.length || !takesPoints()) return null;
  const size = photoSize();
  if (!size) return null;
  const [w, h] = size;
  // a point covers about 3x3 cells of the network's input, like the patches it was trained with
  const cell = Math.sqrt(w * h) / (Number(els.rf.value) * 16);
  const radius = Math.max(1, Math.round(1.5 * Math.max(1, cell)));
  return JSON.stringify(state.points.map((p) => ({
    x: Math.min(w - 1, Math.max(0, Math.floor(p.fx * w))),
    y: Math.min(h - 1, Math.max(0, Math.floor(p.fy * h))),
    color: p.color,
    radius,
  })));
}

function scheduleColorize(delay = 250) {
  clearTimeout(state.timer);
  state.timer = setTimeout(colorize, delay);
}

async function colorize() {
  if (!state.file) return;
  clearTimeout(state.timer);
  if (state.request) state.request.abort();
  const ctrl = new AbortController();
  state.request = ctrl;
  const body = new FormData();
  body.append("image", state.file, state.file.name || "photo");
  if (els.model.value) body.append("model", els.model.value);
  body.append("render_factor", els.rf.value);
  if (!els.pcField.hidden) body.append("prior_correction", els.pc.value);
  if (els.restore.checked) body.append("restore", "true");
  const hints = hintsJson();
  if (hints) body.append("hints", hints);

  clearError();
  els.busy.hidden = false;
  els.busyText.textContent = state.afterUrl ? "Updating…" : "Colorizing…";
  setStatus("Working…");
  const t0 = performance.now();
  try {
    const r = await fetch("/api/colorize", { method: "POST", body, signal: ctrl.signal });
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(r.status === 503 ? "The server is busy; try again in a moment." : msg);
    }
    const blob = await r.blob();
    if (ctrl !== state.request) return;
    revoke("afterUrl");
    state.afterUrl = URL.createObjectURL(blob);
    await showAfter(state.afterUrl);
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    setStatus(`${r.headers.get("X-Tinct-Size") || ""} colorized by ${r.headers.get("X-Tinct-Model")} ` +
              `at render factor ${r.headers.get("X-Tinct-Render-Factor")} in ${secs} s` +
              (hints ? ` with ${state.points.length} color point${state.points.length > 1 ? "s" : ""}` : "") + ".");
    setDownload(state.afterUrl);
  } catch (e) {
    if (e.name === "AbortError") return;
    if (state.afterUrl) {
      setStatus("Showing the previous result.");
    } else {  // nothing to show: back to choosing a photo, the message says why
      resetPhoto();
      setStatus("Choose another photo.");
    }
    showError(e.message);
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

// ---------------------------------------------------------------- color points
els.frame.addEventListener("click", (e) => {
  if (!takesPoints() || !state.file || e.target.classList.contains("point")) return;
  const [fx, fy] = fractionAt(e);
  if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
  state.points.push({ fx, fy, color: els.pointColor.value });
  renderPoints();
  scheduleColorize();
});

els.clearPoints.addEventListener("click", () => {
  state.points = [];
  renderPoints();
  colorize();
});

function removePoint(i) {
  state.points.splice(i, 1);
  renderPoints();
  scheduleColorize();
}

function renderPoints() {
  const show = takesPoints();
  els.points.replaceChildren(...(show ? state.points : []).map((p, i) => {
    const d = document.createElement("button");
    d.type = "button";
    d.className = "point";
    d.title = `${p.color}: click to remove`;
    d.style.left = p.fx * 100 + "%";
    d.style.top = p.fy * 100 + "%";
    d.style.background = p.color;
    d.addEventListener("click", (e) => { e.stopPropagation(); removePoint(i); });
    return d;
  }));
  els.pointList.replaceChildren(...(show ? state.points : []).map((p) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = p.color;
    li.append(sw, p.color);
    return li;
  }));
  els.clearPoints.disabled = !(show && state.points.length);
}

// ---------------------------------------------------------------- messages
function setStatus(text) { els.status.textContent = text; }
function showError(text) { els.error.textContent = text; els.error.hidden = false; }
function clearError() { els.error.hidden = true; els.error.textContent = ""; }

loadModels();
