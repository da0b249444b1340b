// serlaq.js on serlaq.wasm against the native runtime (serlaq-rt), under node's own test
// runner. The fixtures (a model, generated WAVs, serlaq-rt's JSON for them) are written
// by tests/edge/test_wasm.py, which runs this file: SERLAQ_FIXTURES names their folder,
// SERLAQ_WASM_DIR the built package (dist/wasm).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { pathToFileURL } from "node:url";

// The native reference (serlaq-rt on x86_64) computes the features with AVX2 code
// (rustfft's AVX FFT, the mel/chroma/pooling twins) whose float32 sums are ordered
// differently from the module's portable code, so probabilities agree closely but not bit
// for bit: 3.5e-7 at most on these fixtures, 3.5e-6 on 40 EMODB clips with a trained
// 1-bit model (SERLAQ_KERNELS=portable natively changes neither: the GEMV is not the cause).
const PROBA_TOL = 1e-5;
let maxDiff = 0;

// a speech window's out-of-domain score, as serlaq-rt gives it (silence: none)
function closeOod(got, want, what) {
  assert.equal(got.ood === undefined, want.ood === undefined, `${what}: ood ${got.ood} vs native ${want.ood}`);
  if (want.ood !== undefined) assert.ok(Math.abs(got.ood - want.ood) <= 1e-4 * Math.max(1, want.ood), `${what}: ood ${got.ood} vs native ${want.ood}`);
}

function closeScores(got, want, what) {
  assert.deepEqual(Object.keys(got), Object.keys(want), what);
  for (const k of Object.keys(want)) {
    const d = Math.abs(got[k] - want[k]);
    maxDiff = Math.max(maxDiff, d);
    assert.ok(d <= PROBA_TOL, `${what} ${k}: ${got[k]} vs native ${want[k]}`);
  }
}

const FIX = process.env.SERLAQ_FIXTURES;
const DIST = process.env.SERLAQ_WASM_DIR;
if (!FIX || !DIST) throw new Error("set SERLAQ_FIXTURES and SERLAQ_WASM_DIR (tests/edge/test_wasm.py does)");

const { Serlaq, SerlaqError } = await import(pathToFileURL(path.join(DIST, "serlaq.js")));
const expected = JSON.parse(await readFile(path.join(FIX, "expected.json"), "utf8"));
const modelBytes = await readFile(path.join(FIX, "model.laq"));
const model = await Serlaq.load(modelBytes);

// PCM16 mono/stereo WAV as written by the fixtures -> (mono float32 the way serlaq's
// decoder sees it: v / 32768, channels averaged, rate).
function readWav(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const channels = v.getUint16(22, true);
  const rate = v.getUint32(24, true);
  let off = 12;
  while (buf.toString("ascii", off, off + 4) !== "data") off += 8 + v.getUint32(off + 4, true);
  const n = v.getUint32(off + 4, true) / 2 / channels;
  const mono = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += v.getInt16(off + 8 + 2 * (i * channels + c), true) / 32768;
    mono[i] = s / channels;
  }
  return { mono, rate, channels };
}

test("the module has no imports and is at most 300 KB gzip", async () => {
  const bytes = await readFile(path.join(DIST, "serlaq.wasm"));
  const mod = await WebAssembly.compile(bytes);
  assert.deepEqual(WebAssembly.Module.imports(mod), []);
  const gz = gzipSync(bytes, { level: 9 }).length;
  assert.ok(gz <= 300 * 1024, `serlaq.wasm is ${gz} bytes gzip`);
});

test("labels, rate and out-of-domain threshold", () => {
  assert.deepEqual(model.labels, expected.labels);
  assert.equal(model.sampleRate, expected.sample_rate);
  assert.equal(model.oodThreshold, expected.ood_threshold);
});

test("predictFile gives serlaq-rt's labels, probabilities (within 1e-5) and out-of-domain score", async () => {
  assert.ok(expected.files.length >= 4);
  for (const f of expected.files) {
    const got = model.predictFile(await readFile(path.join(FIX, f.path)));
    assert.deepEqual(Object.keys(got), ["label", "confidence", "probabilities", "ood"]);
    assert.equal(got.label, f.label, f.path);
    assert.ok(Math.abs(got.confidence - f.confidence) <= PROBA_TOL, f.path);
    closeScores(got.probabilities, f.probabilities, f.path);
    closeOod(got, f, f.path);
    assert.ok(f.confidence < 0.999, "the fixture's softmax is not saturated");
  }
  console.log(`max |wasm - native| probability: ${maxDiff}`);
});

test("predict on PCM gives exactly what the module gives for the file (mono, any rate)", async () => {
  for (const f of expected.files) {
    const bytes = await readFile(path.join(FIX, f.path));
    const { mono, rate, channels } = readWav(bytes);
    if (channels !== 1) continue;
    assert.deepEqual(model.predict(mono, rate), model.predictFile(bytes), f.path);
    closeScores(model.predict(mono, rate).probabilities, f.probabilities, f.path);
  }
});

test("a stream in any chunk sizes gives serlaq-rt's segments", async () => {
  const { mono, rate } = readWav(await readFile(path.join(FIX, expected.segments.path)));
  for (const size of [1000, 4096, 77777]) {
    const s = model.stream(rate, { window: 1.0, hop: 0.5 });
    const got = [];
    for (let i = 0; i < mono.length; i += size) got.push(...s.push(mono.subarray(i, i + size)));
    got.push(...s.flush());
    s.free();
    const want = expected.segments.rows;
    assert.equal(got.length, want.length);
    assert.ok(want.some((w) => w.speech) && want.some((w) => !w.speech), "the fixture has speech and silence");
    got.forEach((g, i) => {
      const w = want[i];
      const keys = ["index", "start", "end", "label", "confidence", "speech", "voiced", "probabilities"];
      assert.deepEqual(Object.keys(g), w.speech ? [...keys, "ood"] : keys, `window ${i}`);
      closeOod(g, w, `window ${i} (chunks of ${size})`);
      for (const k of ["index", "start", "end", "label", "speech", "voiced"]) {
        assert.deepEqual(g[k], w[k], `window ${i} ${k} (chunks of ${size})`);
      }
      assert.equal(g.confidence === null, w.confidence === null);
      closeScores(g.probabilities, w.probabilities, `window ${i} (chunks of ${size})`);
    });
  }
});

test("a stream with running normalisation gives serlaq-rt --running-norm's segments", async () => {
  const { mono, rate } = readWav(await readFile(path.join(FIX, expected.segments_running.path)));
  const { prior, horizon, rows: want } = expected.segments_running;
  assert.notDeepEqual(want.map((w) => w.confidence), expected.segments.rows.map((w) => w.confidence), "it changes the answers");
  const s = model.stream(rate, { window: 1.0, hop: 0.5, runningNorm: true, runningPrior: prior, runningHorizon: horizon });
  const got = [];
  for (let i = 0; i < mono.length; i += 3000) got.push(...s.push(mono.subarray(i, i + 3000)));
  got.push(...s.flush());
  s.free();
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.deepEqual([g.index, g.label, g.speech], [want[i].index, want[i].label, want[i].speech], `window ${i}`);
    closeScores(g.probabilities, want[i].probabilities, `running window ${i}`);
    closeOod(g, want[i], `running window ${i}`);
  });
  assert.throws(() => model.stream(rate, { runningNorm: true, runningPrior: 0 }), (e) => e.kind === "argument" && /running_prior/.test(e.message));
});

test("bad input throws one-line SerlaqErrors and the model keeps working", async () => {
  const cases = [
    [() => model.predictFile(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])), "audio", "<bytes>"],
    [() => model.predictFile(new Uint8Array(0)), "argument", "length is 0"],
    [() => model.predictFile("clip.wav"), "argument", "ArrayBuffer"],
    [() => model.predict(new Float32Array(0), 16000), "argument", "length is 0"],
    [() => model.predict(new Float32Array(100), 16000), "audio", "<pcm>"],
    [() => model.predict(new Float32Array(8000).fill(NaN), 16000), "audio", "<pcm>"],
    [() => model.predict(new Float32Array(8000), 0), "argument", "sampleRate"],
    [() => model.predict(new Float32Array(8000), 500000), "audio", "<pcm>"],
    [() => model.stream(16000, { hop: 9 }), "argument", "hop"],
  ];
  for (const [fn, kind, needle] of cases) {
    assert.throws(fn, (e) => e instanceof SerlaqError && e.kind === kind && e.message.includes(needle) && !e.message.includes("\n"), needle);
  }
  const s = model.stream(16000);
  assert.throws(() => s.push(new Float32Array([0, NaN])), (e) => e.kind === "stream" && /NaN\/inf/.test(e.message));
  assert.throws(() => s.flush(), (e) => e.kind === "stream" && /too short/.test(e.message));
  assert.throws(() => s.push(new Float32Array(10)), (e) => e.kind === "stream" && /after finish/.test(e.message));
  s.free();
  await assert.rejects(Serlaq.load(new Uint8Array([9, 9, 9, 9])), (e) => e.kind === "model" && e.message.startsWith("<bytes>: "));
  const f = expected.files[0];
  closeScores(model.predictFile(await readFile(path.join(FIX, f.path))).probabilities, f.probabilities, "after errors");
});

test("a freed model refuses calls", async () => {
  const m = await Serlaq.load(modelBytes);
  const s = m.stream(22050);
  m.free();
  assert.throws(() => m.predict(new Float32Array(22050), 22050), /freed/);
  assert.deepEqual(s.push(new Float32Array(100)), [], "its stream keeps the model alive");
  s.free();
});
