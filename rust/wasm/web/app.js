// The page: a model from this folder (model.laq) or dropped, an audio file dropped or the
// microphone, a timeline of windows drawn as they finish. Everything runs here.
// `#model=URL&audio=URL` (same origin) loads both at start, `&adapt=URL,URL,...` adapts the
// model on those recordings first; `&report=URL` also POSTs the result JSON to that
// same-origin URL (automation: the page test reads it there).
import { Serlaq } from "./serlaq.js";

const $ = (id) => document.getElementById(id);
const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
let model = null;
let segments = [];
let live = null;
let adapter = null; // recordings gathered to adapt the model on, kept until it adapts
let adapted = null; // what the last adaptation took and left out (in the report)

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function color(label) {
  return label === "silence" ? "#ccc" : COLORS[model.labels.indexOf(label) % COLORS.length];
}

function legend() {
  $("legend").innerHTML = "";
  for (const l of [...model.labels, "silence"]) {
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${color(l)}"></i>`;
    s.append(l);
    $("legend").append(s);
  }
}

function draw() {
  const c = $("timeline");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const end = Math.max(1, ...segments.map((s) => s.end));
  for (const s of segments) {
    const x0 = (s.start / end) * c.width;
    const x1 = (s.end / end) * c.width;
    const h = s.speech ? s.confidence * (c.height - 20) : 6;
    g.globalAlpha = 0.55;
    g.fillStyle = color(s.label);
    g.fillRect(x0, c.height - 20 - h, Math.max(1, x1 - x0), h);
  }
  g.globalAlpha = 1;
  g.fillStyle = "#444";
  g.fillText("0 s", 2, c.height - 5);
  g.fillText(`${end.toFixed(1)} s`, c.width - 50, c.height - 5);
}

// Far from home, as `serlaq predict` warns: the clip (or, without one, most of at least two
// speech windows) above the model's out-of-domain threshold. Returns the note shown ("" none).
function homeNote(clip) {
  const t = model.oodThreshold;
  const speech = segments.filter((s) => s.speech);
  const far = speech.filter((s) => s.ood > t).length;
  let text = "";
  // the adapter module's page can adapt here: the note says so
  const how = model.canAdapt ? "serlaq adapt, or recordings chosen under \"Adapt the model\" above" : "serlaq adapt";
  if (clip ? clip.ood > t : speech.length >= 2 && 2 * far > speech.length) {
    text = clip
      ? `This clip lies far outside the model's training distribution (out-of-domain score ${clip.ood.toFixed(2)}, threshold ${t.toFixed(2)}): its answer is unreliable; adapt the model to this audio first (${how}).`
      : `${far} of ${speech.length} speech windows lie far outside the model's training distribution (threshold ${t.toFixed(2)}): their answers are unreliable; adapt the model to this audio first (${how}), or tick "Adapt to this room".`;
  }
  $("ood").textContent = text;
  $("ood").hidden = !text;
  return text;
}

function report(obj) {
  $("result").textContent = JSON.stringify({ ...obj, adapted, canAdapt: !$("adaptPanel").hidden });
  $("result").dataset.done = "1";
  const to = new URLSearchParams(location.hash.slice(1)).get("report");
  if (to && new URL(to, location.href).origin === location.origin) {
    fetch(to, { method: "POST", headers: { "content-type": "application/json" }, body: $("result").textContent });
  }
}

function setModel(next) {
  adapter?.free();
  adapter = null;
  model?.free();
  model = next;
  $("mic").disabled = !navigator.mediaDevices?.getUserMedia;
  $("adaptPanel").hidden = !model.canAdapt; // the module built with `make wasm-adapt`
  legend();
}

async function useModel(bytes, name) {
  setModel(await Serlaq.load(bytes));
  adapted = null;
  $("download").hidden = true;
  $("adaptNote").textContent = "";
  status(`Model ${name}: ${model.labels.join(", ")} (${model.sampleRate} Hz).`);
}

// `serlaq adapt` on this device: each file is a clip (a recording longer than 30 s, its
// speech windows), a file that is not usable audio is named and left out. Too little audio
// keeps the clips and says how much more; otherwise the adapted model replaces this one.
async function adaptOn(files) {
  if (!model) return status("Drop a .laq model first.", true);
  adapter ??= model.adapter();
  const failures = [];
  let clips = 0;
  for (const { name, bytes } of files) {
    try {
      clips = adapter.addFile(bytes);
    } catch (e) {
      failures.push(`${name}: ${e.message}`);
    }
  }
  const left = failures.length ? ` Left out: ${failures.join("; ")}.` : "";
  let next;
  try {
    next = adapter.finish({ source: `${clips} clips in the browser` });
  } catch (e) {
    if (e.kind !== "too-little") throw e;
    $("adaptNote").textContent = `${e.message}: choose more recordings (the ones so far are kept).${left}`;
    adapted = { error: e.message, failures };
    return;
  }
  const speech = adapter.speechSeconds;
  setModel(next);
  adapted = { clips, speechSeconds: speech, failures };
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([model.bytes()], { type: "application/octet-stream" }));
  link.hidden = false;
  $("adaptNote").textContent = `Adapted on ${clips} clips (${speech.toFixed(1)} s of speech): the model now answers for this room.${left}`;
  status(`Adapted model: ${model.labels.join(", ")}.`);
}

// The browser decodes for the timeline (resampled to the model's rate); the clip result
// comes from serlaq's own decoder (WAV in the default build: other formats get the
// timeline only).
async function useAudio(bytes, name) {
  if (!model) return status("Drop a .laq model first.", true);
  status(`Analysing ${name}…`);
  let clip = null;
  let clipError = "";
  try {
    clip = model.predictFile(bytes.slice(0));
  } catch (e) {
    clipError = e.message;
  }
  const ctx = new OfflineAudioContext(1, 1, model.sampleRate);
  const buf = await ctx.decodeAudioData(bytes.slice(0).buffer);
  const mono = new Float32Array(buf.length);
  for (let c = 0; c < buf.numberOfChannels; c++) {
    const ch = buf.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += ch[i] / buf.numberOfChannels;
  }
  const stream = model.stream(buf.sampleRate, { runningNorm: $("adapt").checked });
  segments = [];
  for (let i = 0; i < mono.length; i += 4096) segments.push(...stream.push(mono.subarray(i, i + 4096)));
  try {
    segments.push(...stream.flush());
  } finally {
    stream.free();
  }
  draw();
  $("clip").textContent = "";
  const head = document.createElement("p");
  head.textContent = clip
    ? `${name}: ${clip.label} (${clip.confidence.toFixed(3)}, out-of-domain score ${clip.ood.toFixed(2)})`
    : `${name}: whole-clip result unavailable: ${clipError}`;
  $("clip").append(head);
  if (clip) {
    const table = document.createElement("table");
    for (const [l, p] of Object.entries(clip.probabilities)) table.insertRow().append(...[l, p.toFixed(3)].map((t) => Object.assign(document.createElement("td"), { textContent: t })));
    $("clip").append(table);
  }
  const note = homeNote(clip);
  status(`${name}: ${segments.length} windows.`);
  report({ file: name, clip, clipError, segments, oodThreshold: model.oodThreshold, head: head.textContent, note });
}

async function handle(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    if (file.name.endsWith(".laq")) await useModel(bytes, file.name);
    else await useAudio(bytes, file.name);
  } catch (e) {
    status(`${file.name}: ${e.message}`, true);
    report({ file: file.name, error: e.message });
  }
}

async function handleAll(files) {
  const sorted = [...files].sort((a, b) => b.name.endsWith(".laq") - a.name.endsWith(".laq"));
  for (const f of sorted) await handle(f);
}

const WORKLET = `registerProcessor("tap", class extends AudioWorkletProcessor {
  process(inputs) { const ch = inputs[0][0]; if (ch) this.port.postMessage(ch.slice(0)); return true; }
});`;

async function toggleMic() {
  if (live) {
    live.ctx.close();
    live.media.getTracks().forEach((t) => t.stop());
    segments.push(...live.stream.flush());
    live.stream.free();
    live = null;
    $("mic").textContent = "Start microphone";
    homeNote(null);
    return draw();
  }
  const media = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" })));
  const node = new AudioWorkletNode(ctx, "tap");
  ctx.createMediaStreamSource(media).connect(node);
  const stream = model.stream(ctx.sampleRate, { runningNorm: $("adapt").checked });
  segments = [];
  homeNote(null);
  node.port.onmessage = (e) => {
    const done = stream.push(e.data);
    if (done.length) {
      segments.push(...done);
      homeNote(null);
      draw();
    }
  };
  live = { ctx, media, stream };
  $("mic").textContent = "Stop microphone";
  status(`Listening at ${ctx.sampleRate} Hz (nothing is sent anywhere).`);
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function start() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => (e.preventDefault(), drop.classList.remove("over"), handleAll(e.dataTransfer.files)));
  $("pick").addEventListener("change", (e) => handleAll(e.target.files));
  $("adaptFiles").addEventListener("change", async (e) => {
    const files = await Promise.all([...e.target.files].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
    e.target.value = ""; // the same files may be chosen again
    adaptOn(files).catch((err) => status(`adapt: ${err.message}`, true));
  });
  $("mic").addEventListener("click", () => toggleMic().catch((e) => status(`microphone: ${e.message}`, true)));
  const params = new URLSearchParams(location.hash.slice(1));
  try {
    const m = params.get("model") ?? "model.laq";
    const r = await fetch(m);
    if (r.ok) await useModel(new Uint8Array(await r.arrayBuffer()), m);
    else status("Drop a .laq model to start.");
    const ad = params.get("adapt");
    if (ad) {
      const urls = ad.split(",").filter(Boolean);
      await adaptOn(await Promise.all(urls.map(async (u) => ({ name: u, bytes: await fetchBytes(u) }))));
      if (!params.get("audio")) report({});
    }
    const a = params.get("audio");
    if (a) await useAudio(await fetchBytes(a), a);
  } catch (e) {
    status(e.message, true);
    report({ error: e.message });
  }
}

start();
