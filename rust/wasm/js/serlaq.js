// serlaq.js: speech emotion recognition from a packed .laq model, in the browser or node,
// on serlaq.wasm (the Rust runtime compiled to WebAssembly). No dependencies, no network:
// the module and the model are fetched from where you point them, audio stays in memory.
//
//   import { Serlaq } from "./serlaq.js";
//   const model = await Serlaq.load("model.laq");            // a URL, or the bytes
//   model.labels;                                            // ["angry", ...]
//   model.oodThreshold;                                      // `ood` above it: far from the
//                                                            // training data (`serlaq adapt`)
//   model.predict(float32Samples, 16000);                    // {label, confidence, probabilities, ood}
//   model.predictFile(await file.arrayBuffer());             // an encoded file: WAV (the
//                                                            // default build; `make wasm
//                                                            // WASM_FEATURES=mp3,flac` adds more)
//   const s = model.stream(48000, {window: 2, hop: 1});      // live audio
//   s.push(chunk);  s.flush();                               // -> finished windows (segments)
//   model.bytes();                                           // the .laq file (Uint8Array)
//
// Adapting to a room (a module built with `make wasm-adapt`; the default module has no
// adapter, docs/deploy.md), as `serlaq adapt` does, from clips recorded there:
//   const a = model.adapter();
//   a.addPcm(utterance, 48000);  a.addFile(bytes);           // -> clips so far
//   a.speechSeconds;                                         // 20 s of speech are needed
//   const mine = a.finish({labels: ["angry", "neutral"]});   // a Model; mine.bytes() to keep
//
// Errors are thrown as SerlaqError (`.kind`: "argument", "model", "audio", "stream",
// "internal") with the one-line message of the runtime. A model is freed by the garbage
// collector's owner, or at once with model.free().

const KINDS = { [-1]: "argument", [-2]: "model", [-3]: "audio", [-4]: "stream", [-5]: "internal", [-6]: "too-little" };

// The adapter's std rules, in the ABI's order (`SERLAQ_STD_WIDEN`, `_TARGET`, `_MODEL`).
const STD_RULES = ["widen", "target", "model"];

export class SerlaqError extends Error {
  constructor(message, kind) {
    super(message);
    this.name = "SerlaqError";
    this.kind = kind;
  }
}

async function readBytes(source) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Blob !== "undefined" && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  const url = source instanceof URL ? source : new URL(String(source), globalThis.location?.href ?? import.meta.url);
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    return new Uint8Array(await readFile(url));
  }
  const r = await fetch(url);
  if (!r.ok) throw new SerlaqError(`${url}: HTTP ${r.status} ${r.statusText}`, "argument");
  return new Uint8Array(await r.arrayBuffer());
}

const compiled = new Map();

async function compileModule(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  const key = wasm ?? "default";
  if (!compiled.has(key)) {
    const p = readBytes(wasm ?? new URL("./serlaq.wasm", import.meta.url)).then((b) => WebAssembly.compile(b));
    p.catch(() => compiled.delete(key));
    compiled.set(key, p);
  }
  return compiled.get(key);
}

// One instance of the module: its memory, exports and the last error. After a trap (a bug
// in serlaq; Rust panics abort there) the instance is dropped and its models reload.
class Runtime {
  constructor(module) {
    this.module = module;
    this.x = new WebAssembly.Instance(module, {}).exports;
    this.x.serlaq_init();
  }
  cstr(ptr) {
    const mem = new Uint8Array(this.x.memory.buffer);
    let end = ptr;
    while (mem[end] !== 0) end++;
    return new TextDecoder().decode(mem.subarray(ptr, end));
  }
  // The result the last call left: the runtime's records as JSON.
  out() {
    const bytes = new Uint8Array(this.x.memory.buffer, this.x.serlaq_out_ptr(), this.x.serlaq_out_len());
    return JSON.parse(new TextDecoder().decode(bytes));
  }
  error(code) {
    return new SerlaqError(this.cstr(this.x.serlaq_last_error()), KINDS[code] ?? "internal");
  }
  alloc(bytes) {
    const p = this.x.serlaq_alloc(Math.max(bytes, 8));
    if (p === 0) throw new SerlaqError(`out of memory: ${bytes} bytes for the WebAssembly module`, "argument");
    return p;
  }
  // Runs fn(ptr) with `src` (a typed array) copied into module memory.
  withInput(src, fn) {
    const p = this.alloc(src.byteLength);
    try {
      new Uint8Array(this.x.memory.buffer, p, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
      return fn(p, src.length);
    } finally {
      this.x.serlaq_dealloc(p, Math.max(src.byteLength, 8));
    }
  }
  // Runs fn(ptr, length) with `text` copied into module memory as UTF-8.
  withText(text, fn) {
    const bytes = new TextEncoder().encode(String(text));
    return bytes.length === 0 ? fn(0, 0) : this.withInput(bytes, fn);
  }
  withOutput(bytes, fn) {
    const p = this.alloc(bytes);
    try {
      return fn(p);
    } finally {
      this.x.serlaq_dealloc(p, Math.max(bytes, 8));
    }
  }
}

function checkRate(sampleRate) {
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff) {
    throw new SerlaqError(`sampleRate must be a positive integer in Hz (got ${sampleRate})`, "argument");
  }
  return sampleRate >>> 0;
}

function samplesOf(samples) {
  if (samples instanceof Float32Array) return samples;
  if (samples && typeof samples.length === "number") return Float32Array.from(samples);
  throw new SerlaqError("samples must be a Float32Array (mono, nominally -1..1)", "argument");
}

export class Model {
  #rt;
  #ptr;
  #bytes;
  #handles = new Set(); // its streams and adapters: they die with the instance after a trap

  constructor(rt, ptr, bytes) {
    this.#rt = rt;
    this.#ptr = ptr;
    this.#bytes = bytes;
    const x = rt.x;
    const n = x.serlaq_model_num_labels(ptr);
    /** Labels in probability order. */
    this.labels = Array.from({ length: n }, (_, i) => rt.cstr(x.serlaq_model_label(ptr, i)));
    /** The rate the model works at (any other input rate is resampled). */
    this.sampleRate = x.serlaq_model_sample_rate(ptr);
    /** A clip or window whose `ood` is above it lies outside the model's training data. */
    this.oodThreshold = x.serlaq_model_ood_threshold(ptr);
  }

  static create(rt, bytes) {
    const ptr = rt.withInput(bytes, (p, n) => rt.x.serlaq_model_from_bytes(p, n));
    if (ptr === 0) throw rt.error(rt.x.serlaq_last_error_code());
    return new Model(rt, ptr, bytes);
  }

  #live() {
    if (this.#ptr === 0) throw new SerlaqError("the model was freed", "argument");
    return this.#rt;
  }

  // Runs fn on the instance; a trap becomes a SerlaqError and a fresh instance. (Streams
  // run here too: they keep working after the model is freed.)
  call(fn) {
    const rt = this.#rt;
    try {
      return fn(rt, this.#ptr);
    } catch (e) {
      if (!(e instanceof WebAssembly.RuntimeError)) throw e;
      let message;
      try {
        message = rt.cstr(rt.x.serlaq_last_error());
      } catch {
        message = "";
      }
      for (const h of this.#handles) h._kill();
      this.#handles.clear();
      const fresh = new Runtime(rt.module);
      this.#rt = fresh;
      if (this.#ptr !== 0) this.#ptr = fresh.withInput(this.#bytes, (p, n) => fresh.x.serlaq_model_from_bytes(p, n));
      throw new SerlaqError(`${message || "internal error in serlaq (please report)"} [${e.message}]`, "internal");
    }
  }

  /** Mono float32 samples at `sampleRate` Hz -> {label, confidence, probabilities, ood}. */
  predict(samples, sampleRate) {
    this.#live();
    const x = samplesOf(samples);
    const rate = checkRate(sampleRate);
    return this.call((rt, m) => {
      const code = rt.withInput(x, (p, n) => rt.x.serlaq_predict_pcm(m, p, n, rate));
      if (code !== 0) throw rt.error(code);
      return rt.out();
    });
  }

  /** An encoded audio file (ArrayBuffer / Uint8Array): WAV, plus the decoders built in. */
  predictFile(data) {
    this.#live();
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new SerlaqError("predictFile needs an ArrayBuffer or a Uint8Array", "argument");
    return this.call((rt, m) => {
      const code = rt.withInput(bytes, (p, n) => rt.x.serlaq_predict_bytes(m, p, n));
      if (code !== 0) throw rt.error(code);
      return rt.out();
    });
  }

  /**
   * A live stream at `sampleRate` Hz: options window, hop (seconds), vad (bool), vadDb,
   * minSpeech; runningNorm (bool: adapt to the stream's room as it goes), runningPrior,
   * runningHorizon (windows), runningBalance (bool, default true: also spread the
   * windows over the labels).
   */
  stream(sampleRate, options = {}) {
    this.#live();
    const rate = checkRate(sampleRate);
    const d = this.call((rt) => rt.withOutput(56, (out) => (rt.x.serlaq_stream_defaults(out), Array.from(new Float64Array(rt.x.memory.buffer, out, 7)))));
    const o = {
      window: d[0], hop: d[1], vad: d[2] !== 0, vadDb: d[3], minSpeech: d[4],
      runningNorm: false, runningPrior: d[5], runningHorizon: d[6], runningBalance: true, ...options,
    };
    const s = new Stream(this, rate, o);
    this.#handles.add(s);
    return s;
  }

  /** The model's .laq file (a copy): an adapted model's to keep, e.g. as a download. */
  bytes() {
    return new Uint8Array(this.#bytes);
  }

  /** Whether this module can adapt (built with `make wasm-adapt`): see adapter(). */
  get canAdapt() {
    return typeof this.#rt.x.serlaq_adapter_new === "function";
  }

  /**
   * Gathers clips of a new room to adapt this model to (`serlaq adapt`); needs a module
   * built with the adapter (`make wasm-adapt`).
   */
  adapter() {
    this.#live();
    if (!this.canAdapt) {
      throw new SerlaqError("this serlaq.wasm has no adapter: build it with `make wasm-adapt`", "argument");
    }
    const a = new Adapter(this);
    this.#handles.add(a);
    return a;
  }

  _forget(handle) {
    this.#handles.delete(handle);
  }

  /** Frees the model's memory now (its open streams keep working until freed). */
  free() {
    if (this.#ptr !== 0) {
      this.#rt.x.serlaq_model_free(this.#ptr);
      this.#ptr = 0;
    }
  }
}

// A handle that belongs to a model (a stream, an adapter): it dies with the module instance
// after a trap (the model's call() resets the instance) and is freed with free().
class Handle {
  #model;
  #rt = null;
  #ptr = 0;
  #what;
  #kind;
  #release;

  constructor(model, what, kind, make, release) {
    this.#model = model;
    this.#what = what;
    this.#kind = kind;
    this.#release = release;
    model.call((rt, m) => {
      this.#ptr = make(rt, m);
      this.#rt = rt;
    });
  }

  _kill() {
    this.#ptr = 0;
    this.#rt = null;
  }

  _run(fn) {
    if (this.#ptr === 0) throw new SerlaqError(`the ${this.#what} was freed (or its module was reset after an internal error)`, this.#kind);
    return this.#model.call(() => fn(this.#rt, this.#ptr));
  }

  free() {
    if (this.#ptr !== 0) {
      this.#release(this.#rt, this.#ptr);
      this._kill();
    }
    this.#model._forget(this);
  }
}

export class Stream extends Handle {
  constructor(model, rate, o) {
    const make = (rt, m) => {
      const nums = [o.window, o.hop, o.vadDb, o.minSpeech].map(Number);
      const ptr = rt.x.serlaq_stream_new(m, rate, nums[0], nums[1], o.vad ? 1 : 0, nums[2], nums[3]);
      if (ptr === 0) throw rt.error(rt.x.serlaq_last_error_code());
      if (o.runningNorm) {
        const code = rt.x.serlaq_stream_running_norm(ptr, Number(o.runningPrior), Number(o.runningHorizon), o.runningBalance ? 1 : 0);
        if (code !== 0) {
          const e = rt.error(code);
          rt.x.serlaq_stream_free(ptr);
          throw e;
        }
      }
      return ptr;
    };
    super(model, "stream", "stream", make, (rt, s) => rt.x.serlaq_stream_free(s));
    this.sampleRate = rate;
  }

  // the windows a call finished (it returns how many, or < 0: an error)
  #windows(fn) {
    return this._run((rt, s) => {
      const k = fn(rt, s);
      if (k < 0) throw rt.error(k);
      return rt.out();
    });
  }

  /** Appends samples (any chunk size); returns the windows they finished. */
  push(samples) {
    const x = samplesOf(samples);
    return this.#windows((rt, s) => (x.length === 0 ? rt.x.serlaq_stream_push(s, 0, 0) : rt.withInput(x, (p, n) => rt.x.serlaq_stream_push(s, p, n))));
  }

  /** Ends the stream; returns the last windows. */
  flush() {
    return this.#windows((rt, s) => rt.x.serlaq_stream_flush(s));
  }
}

export class Adapter extends Handle {
  constructor(model) {
    const make = (rt, m) => {
      const ptr = rt.x.serlaq_adapter_new(m);
      if (ptr === 0) throw rt.error(rt.x.serlaq_last_error_code());
      return ptr;
    };
    super(model, "adapter", "argument", make, (rt, a) => rt.x.serlaq_adapter_free(a));
  }

  #added(rt, k) {
    if (k < 0) throw rt.error(k);
    return k;
  }

  /** One clip: mono float32 samples at `sampleRate` Hz. Returns the clips gathered; an
   * unusable clip throws (kind "audio") and is left out, the others stay. */
  addPcm(samples, sampleRate) {
    const x = samplesOf(samples);
    const rate = checkRate(sampleRate);
    return this._run((rt, a) => this.#added(rt, rt.withInput(x, (p, n) => rt.x.serlaq_adapter_add_pcm(a, p, n, rate))));
  }

  /** One clip from an encoded file (ArrayBuffer / Uint8Array); longer than 30 s: its speech
   * windows. Returns the clips gathered. */
  addFile(data) {
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new SerlaqError("addFile needs an ArrayBuffer or a Uint8Array", "argument");
    return this._run((rt, a) => this.#added(rt, rt.withInput(bytes, (p, n) => rt.x.serlaq_adapter_add_bytes(a, p, n))));
  }

  /** Seconds of speech gathered (an adaptation needs 20, and 20 clips). */
  get speechSeconds() {
    return this._run((rt, a) => rt.x.serlaq_adapter_speech_seconds(a));
  }

  /**
   * The adapted Model. Options: labels (the ones the room's audio holds; default all),
   * balance (default true), std ("widen", "target" or "model"), source (recorded in the
   * file; default the clips' names), created (a Date or ISO-8601 UTC text to the
   * second, "2026-12-04T06:00:00Z"; default now). Too little audio throws kind
   * "too-little", saying how much more; the clips stay, so add more and finish again. A
   * malformed option throws kind "argument" naming it (an invalid Date too).
   */
  finish(options = {}) {
    const o = { labels: [], balance: true, std: "widen", source: "", created: new Date(), ...options };
    const std = STD_RULES.indexOf(o.std);
    if (std < 0) throw new SerlaqError(`std must be one of ${STD_RULES.join(", ")} (got ${o.std})`, "argument");
    const labels = Array.isArray(o.labels) ? o.labels.join(",") : String(o.labels);
    const when = o.created ?? new Date();
    if (when instanceof Date && Number.isNaN(when.getTime())) {
      throw new SerlaqError("created is an invalid Date (its time is NaN): give a valid Date or ISO-8601 UTC text", "argument");
    }
    // a Date to the second, as the record keeps it; text is checked by the module (one rule for C and the browser)
    const created = when instanceof Date ? when.toISOString().replace(/\.\d{3}Z$/, "Z") : String(when);
    return this._run((rt, a) => {
      const m = rt.withText(labels, (lp, ln) =>
        rt.withText(o.source ?? "", (sp, sn) =>
          rt.withText(created, (cp, cn) => rt.x.serlaq_adapter_finish(a, o.balance ? 1 : 0, std, lp, ln, sp, sn, cp, cn))));
      if (m === 0) throw rt.error(rt.x.serlaq_last_error_code());
      let bytes;
      try {
        bytes = new Uint8Array(rt.x.memory.buffer, rt.x.serlaq_model_bytes_ptr(m), rt.x.serlaq_model_bytes_len(m)).slice();
      } finally {
        rt.x.serlaq_model_free(m);
      }
      // the JavaScript model keeps the bytes, so it can reload after a trap like any other
      return Model.create(rt, bytes);
    });
  }
}

export const Serlaq = {
  /**
   * Loads a model: `source` is a URL (string or URL; file: URLs in node), an ArrayBuffer,
   * a Uint8Array or a Blob. `options.wasm`: where serlaq.wasm is (default: next to this
   * file), or a compiled WebAssembly.Module.
   */
  async load(source, options = {}) {
    const [module, bytes] = await Promise.all([compileModule(options.wasm), readBytes(source)]);
    // a copy (a node Buffer's slice() would be a view of the caller's memory)
    return Model.create(new Runtime(module), new Uint8Array(bytes));
  },
};

export default Serlaq;
