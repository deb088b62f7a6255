// The study page: start, then for each pair show the two photos and send which side the participant thinks is
// real. It never learns which one was; the server keeps that. Optional time limit: the photos are hidden after
// `show_seconds`, and the participant still answers.
"use strict";

const $ = (id) => document.getElementById(id);
const st = { participant: null, trial: null, shownAt: 0, timer: null, busy: false, showSeconds: 0 };

async function call(url, options) {
  const r = await fetch(url, options);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function fail(e) {
  $("error").textContent = "Something went wrong: " + e.message + ". Reload the page to continue.";
  $("error").hidden = false;
}

async function begin() {
  try {
    // a reload continues the same participant (sessionStorage is this tab's only)
    st.participant = sessionStorage.getItem("tinct-study-participant");
    if (!st.participant) {
      const s = await call("/api/start", { method: "POST" });
      st.participant = s.participant;
      sessionStorage.setItem("tinct-study-participant", st.participant);
    }
    $("start").disabled = false;
  } catch (e) { fail(e); }
}

function loaded(img) {
  return new Promise((resolve, reject) => {
    if (img.complete && img.naturalWidth) return resolve();
    img.onload = () => resolve();
    img.onerror = () => reject(new Error("a photo did not load"));
  });
}

async function next() {
  clearTimeout(st.timer);
  let t;
  try {
    t = await call("/api/next?participant=" + encodeURIComponent(st.participant));
  } catch (e) {
    if (/unknown participant/.test(e.message)) { sessionStorage.removeItem("tinct-study-participant"); }
    return fail(e);
  }
  if (t.done) {
    $("trial").hidden = true;
    $("answered").textContent = t.answered;
    $("done").hidden = false;
    return;
  }
  st.trial = t.trial;
  st.showSeconds = t.show_seconds || 0;
  $("index").textContent = t.index;
  $("total").textContent = t.total;
  const pair = document.querySelector(".pair");
  pair.classList.add("concealed");
  $("hiddenNote").hidden = true;
  $("leftImg").src = t.left;
  $("rightImg").src = t.right;
  try { await Promise.all([loaded($("leftImg")), loaded($("rightImg"))]); } catch (e) { return fail(e); }
  pair.classList.remove("concealed");  // both at once: neither gets a head start
  st.shownAt = performance.now();
  st.busy = false;
  if (st.showSeconds > 0) {
    st.timer = setTimeout(() => { pair.classList.add("concealed"); $("hiddenNote").hidden = false; }, st.showSeconds * 1000);
  }
}

async function choose(side) {
  if (st.busy || !st.trial) return;
  st.busy = true;
  clearTimeout(st.timer);
  try {
    await call("/api/answer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ participant: st.participant, trial: st.trial, choice: side,
                             response_ms: Math.round(performance.now() - st.shownAt) }),
    });
  } catch (e) { return fail(e); }
  st.trial = null;
  next();
}

$("start").addEventListener("click", () => { $("intro").hidden = true; $("trial").hidden = false; next(); });
$("left").addEventListener("click", () => choose("left"));
$("right").addEventListener("click", () => choose("right"));
document.addEventListener("keydown", (e) => {
  if ($("trial").hidden) return;
  if (e.key === "ArrowLeft") choose("left");
  else if (e.key === "ArrowRight") choose("right");
});
begin();
