/*
 * serlaq.h: the C API of serlaq, speech emotion recognition from a packed .laq model.
 *
 * Link:   gcc prog.c -I<dir> -L<dir> -lserlaq -Wl,-rpath,<dir>   (shared: libserlaq.so;
 *                                        the rpath, absolute, or LD_LIBRARY_PATH finds it)
 *         gcc prog.c -I<dir> <dir>/libserlaq.a -lm -lpthread -ldl   (static)
 *
 * Use:
 *     serlaq_model *m = serlaq_model_open("model.laq");
 *     if (!m) { fprintf(stderr, "%s\n", serlaq_last_error()); return 1; }
 *     size_t k = serlaq_model_num_labels(m);
 *     float *p = malloc(k * sizeof *p);
 *     if (serlaq_predict_file(m, "clip.wav", p) != SERLAQ_OK) fprintf(stderr, "%s\n", serlaq_last_error());
 *     else for (size_t i = 0; i < k; i++) printf("%s %.6f\n", serlaq_model_label(m, i), p[i]);
 *     free(p);
 *     serlaq_model_free(m);
 *
 * Audio: WAV (PCM 8-32 bit, float, extensible, A-law, mu-law, IMA/MS ADPCM), FLAC,
 * OGG (Vorbis, Opus), MP3, AIFF, M4A (AAC, ALAC) and WebM (Opus), any channel count (averaged), any rate from
 * 1 to 384 kHz (resampled to the model's rate).
 * Probabilities are in label order (serlaq_model_label(m, i) is the label of probs[i]) and
 * sum to 1; they equal `serlaq predict --format json` (computed in double, returned as float).
 *
 * Errors: functions returning int give SERLAQ_OK (0) or a negative SERLAQ_ERR_* code;
 * functions returning a pointer give NULL; serlaq_model_num_labels gives 0. After any
 * failure serlaq_last_error() holds one line naming the file or argument and what is
 * wrong. NULL pointers, zero lengths, unreadable or corrupt models and audio are errors,
 * never crashes; no panic of the Rust code crosses into C. The library cannot check that
 * a non-NULL pointer is valid or that `probs` has room for num_labels floats: that is
 * the caller's part.
 *
 * Adapt to the room the device sits in (`serlaq adapt`, from clips it recorded):
 *     serlaq_adapter *a = serlaq_adapter_new(m);
 *     serlaq_adapter_add_pcm(a, clip, n, 16000);      // one utterance each; >= 20 clips, 20 s of speech
 *     serlaq_model *room = NULL;
 *     if (serlaq_adapter_finish(a, NULL, &room) == SERLAQ_OK) serlaq_model_save(room, "room.laq");
 *
 * Threads: a serlaq_model is read-only once opened: any number of threads may call the
 * predict functions with the same model at once. A serlaq_stream or serlaq_adapter is
 * used by one thread at a time (it may move between threads). serlaq_last_error() is per
 * thread.
 *
 * Memory: every pointer the library returns is owned by it. Free a model with
 * serlaq_model_free, a stream with serlaq_stream_free and an adapter with
 * serlaq_adapter_free; streams and adapters keep their model's data alive, so the model
 * may be freed first.
 */
#ifndef SERLAQ_H
#define SERLAQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (int results). Counts (stream functions) are >= 0, errors < 0. */
#define SERLAQ_OK 0
#define SERLAQ_ERR_ARGUMENT (-1) /* NULL pointer, zero length, index or option out of range */
#define SERLAQ_ERR_MODEL (-2)    /* model file unreadable (or unwritable) or not a valid .laq model;
                                  * in a predict function: the model refused to compute on
                                  * the features the audio gave (the model's fault) */
#define SERLAQ_ERR_AUDIO (-3)    /* audio unreadable, corrupt, unsupported, too short, silent, NaN,
                                  * rate out of range (the audio's fault; the same for a file,
                                  * samples or bytes) */
#define SERLAQ_ERR_STREAM (-4)   /* stream misuse: push after flush, NaN in a chunk, too short at flush */
#define SERLAQ_ERR_INTERNAL (-5) /* a bug in serlaq (caught); please report the message */
#define SERLAQ_ERR_TOO_LITTLE (-6) /* adapter: too little audio yet; the message says how much more */

/* A loaded model (opaque). */
typedef struct serlaq_model serlaq_model;

/* A live stream being cut into windows (opaque). */
typedef struct serlaq_stream serlaq_stream;

/* Clips of a new room gathered for an adaptation (opaque). */
typedef struct serlaq_adapter serlaq_adapter;

/* How a stream is cut: windows of `window` seconds every `hop` seconds (rounded to whole
 * STFT hops of the model); with `vad` != 0 a window is "silence" (not classified) unless
 * at least `min_speech` (0..1) of its frames reach `vad_db` dBFS. Get the defaults (2 s,
 * 1 s, gate on, -50 dBFS, 0.25) from serlaq_stream_default_options(). */
typedef struct serlaq_stream_options {
    double window;
    double hop;
    int32_t vad;
    double vad_db;
    double min_speech;
} serlaq_stream_options;

/* One finished window of a stream. Positions are samples of the caller's rate. */
typedef struct serlaq_segment {
    uint64_t index;       /* 0, 1, ... */
    uint64_t start;       /* first sample of the window */
    uint64_t end;         /* one past its last sample */
    double start_seconds; /* start / sample_rate */
    double end_seconds;   /* end / sample_rate */
    double voiced;        /* share of the window's frames the gate found voiced (1 without gate) */
    int32_t label;        /* index of the most probable label; -1: silence (model not run) */
    float confidence;     /* probability of that label; 0 for silence */
} serlaq_segment;

/* The library's version, e.g. "0.1.0" (static string). */
const char *serlaq_version(void);

/* This thread's last error: one line, e.g. "model.laq: not a .laq file (bad magic bytes)".
 * Empty before the first failure; unchanged by successful calls; valid until the next
 * failing call on the same thread. Never NULL. */
const char *serlaq_last_error(void);

/* Opens and validates a .laq file. NULL on error (serlaq_last_error names the file).
 * The name "general" opens the general model built into the library (no file needed;
 * "./general" for a file of that name). */
serlaq_model *serlaq_model_open(const char *path);

/* The same from `len` bytes in memory (copied; the caller keeps its buffer). */
serlaq_model *serlaq_model_from_bytes(const uint8_t *data, size_t len);

/* Frees a model; NULL is ignored. Do not use it afterwards (its streams stay usable). */
void serlaq_model_free(serlaq_model *model);

/* Number of labels (= length of every probs array); 0 with an error for NULL. */
size_t serlaq_model_num_labels(const serlaq_model *model);

/* Label i (0 <= i < num_labels), owned by the model; NULL with an error if out of range. */
const char *serlaq_model_label(const serlaq_model *model, size_t i);

/* The rate in Hz the model works at (input at any other rate is resampled); 0 for NULL. */
uint32_t serlaq_model_sample_rate(const serlaq_model *model);

/* The out-of-domain threshold: a clip or window whose out-of-domain score (the `_ood`
 * functions below) is above it lies outside the model's training data, and its answer is
 * unreliable until the model is adapted to that audio (`serlaq adapt`). 0 for NULL. */
double serlaq_model_ood_threshold(const serlaq_model *model);

/* Decodes an audio file and writes one probability per label to `probs`
 * (num_labels floats). 0 = ok, < 0 = error (probs untouched). The path "-" is the
 * process's standard input (as the command-line tools take it); a file called "-" is "./-". */
int serlaq_predict_file(const serlaq_model *m, const char *path, float *probs);

/* The same for `n` mono float samples (nominally -1..1) at `sample_rate` Hz. */
int serlaq_predict_pcm(const serlaq_model *m, const float *samples, size_t n,
                       uint32_t sample_rate, float *probs);

/* The same for an encoded audio file held in memory (`len` bytes: WAV, FLAC, ...). */
int serlaq_predict_bytes(const serlaq_model *m, const uint8_t *data, size_t len, float *probs);

/* The three above, also writing the clip's out-of-domain score to `*ood` (NULL: not
 * wanted; about 1 on the training data, see serlaq_model_ood_threshold). Neither output
 * is touched on error. */
int serlaq_predict_file_ood(const serlaq_model *m, const char *path, float *probs, double *ood);
int serlaq_predict_pcm_ood(const serlaq_model *m, const float *samples, size_t n,
                           uint32_t sample_rate, float *probs, double *ood);
int serlaq_predict_bytes_ood(const serlaq_model *m, const uint8_t *data, size_t len, float *probs,
                             double *ood);

/* The default stream options (see serlaq_stream_options). */
serlaq_stream_options serlaq_stream_default_options(void);

/* Starts a stream of mono samples at `sample_rate` Hz; `opts` NULL = defaults.
 * NULL on error (bad rate or option: the message names it). */
serlaq_stream *serlaq_stream_new(const serlaq_model *m, uint32_t sample_rate,
                                 const serlaq_stream_options *opts);

/* Running normalisation (`serlaq-rt --running-norm`): each speech window is standardized
 * with the model's statistics, counted as `prior` windows, pooled with the stream's own
 * speech windows so far (forgotten exponentially after `horizon` windows): a stream from
 * a room the model never heard moves towards that room's statistics. With `balance` != 0
 * (serlaq-rt's default) each window's probabilities are also divided by the stream's
 * label mix so far (pooled with `prior` windows of a uniform mix); 0 for a recording that
 * is mostly one emotion. `prior` and `horizon` in 1..1e9; the defaults are
 * SERLAQ_RUNNING_PRIOR and SERLAQ_RUNNING_HORIZON. Call before the first push
 * (SERLAQ_ERR_STREAM after it); SERLAQ_ERR_ARGUMENT names a bad number. */
#define SERLAQ_RUNNING_PRIOR 20.0
#define SERLAQ_RUNNING_HORIZON 600.0
int serlaq_stream_running_norm(serlaq_stream *s, double prior, double horizon, int balance);

/* Appends `n` samples (any chunk size; n may be 0, and `samples` NULL then). Returns the number of finished
 * windows waiting to be taken with serlaq_stream_next (>= 0), or < 0 on error. A chunk
 * holding NaN/inf is rejected whole (SERLAQ_ERR_STREAM) and the stream stays usable. */
int serlaq_stream_push(serlaq_stream *s, const float *samples, size_t n);

/* Ends the stream: the last windows are finished (the stream then takes no more
 * samples). Returns the number of windows waiting, or < 0 (e.g. shorter than one
 * analysis window: SERLAQ_ERR_STREAM). */
int serlaq_stream_flush(serlaq_stream *s);

/* Takes the oldest waiting window: 1 = written to *seg (and, if `probs` is not NULL, its
 * num_labels probabilities; zeros for silence), 0 = none waiting, < 0 = error. */
int serlaq_stream_next(serlaq_stream *s, serlaq_segment *seg, float *probs);

/* The same, also writing the window's out-of-domain score to `*ood` (NULL: not wanted;
 * NaN for silence; under running normalisation, of the window as the stream standardized
 * it). */
int serlaq_stream_next_ood(serlaq_stream *s, serlaq_segment *seg, float *probs, double *ood);

/* Frees a stream; NULL is ignored. */
void serlaq_stream_free(serlaq_stream *s);

/* Writes the model's .laq file to `path` atomically (a temporary file renamed over it: a
 * reader sees the old file or the whole new one). SERLAQ_ERR_MODEL names the path. */
int serlaq_model_save(const serlaq_model *m, const char *path);

/* Adaptation (`serlaq adapt`, docs/adapt.md): unlabelled clips of a new room, microphone
 * or corpus re-estimate the model's input statistics and balance its output over the
 * labels. The adapted model equals what `serlaq adapt` writes from the same clips (its
 * provenance record dated by SOURCE_DATE_EPOCH or now).
 *
 * How it adapts. `balance` != 0 (default): shift the output bias so the clips spread over
 * the labels (0: the recordings are mostly one emotion). `std_rule`: each feature's std
 * from the larger of the model's and the clips' (SERLAQ_STD_WIDEN, default), the clips'
 * own (SERLAQ_STD_TARGET) or the model's (SERLAQ_STD_MODEL). `labels`: NULL (all) or the
 * labels the audio holds, comma-separated model labels ("angry,happy,neutral,sad"); the
 * adapted model answers among them. `source`: NULL or what to record as the clips' source
 * (default: "<pcm>", "<bytes>" or the files' paths). Get the defaults from
 * serlaq_adapt_default_options(). */
#define SERLAQ_STD_WIDEN 0
#define SERLAQ_STD_TARGET 1
#define SERLAQ_STD_MODEL 2
typedef struct serlaq_adapt_options {
    int32_t balance;
    int32_t std_rule;
    const char *labels;
    const char *source;
} serlaq_adapt_options;

serlaq_adapt_options serlaq_adapt_default_options(void);

/* Starts gathering clips for `m`; NULL on error. Each clip keeps about 1 KB (its
 * features, not its audio); at most 100000 clips. */
serlaq_adapter *serlaq_adapter_new(const serlaq_model *m);

/* Adds one clip (an utterance, as `serlaq adapt` takes files): an audio file, `n` mono
 * samples at `sample_rate` Hz, or an encoded file in memory. A recording longer than 30 s
 * is cut into 2-s windows, each window that holds speech one clip. Returns the number of
 * clips gathered (>= 1), or < 0 (SERLAQ_ERR_AUDIO: this clip is unusable and left out; the
 * adapter stays usable). */
int serlaq_adapter_add_file(serlaq_adapter *a, const char *path);
int serlaq_adapter_add_pcm(serlaq_adapter *a, const float *samples, size_t n, uint32_t sample_rate);
int serlaq_adapter_add_bytes(serlaq_adapter *a, const uint8_t *data, size_t len);

/* Seconds of speech in the clips gathered (adaptation needs 20 s in 20 clips); 0 for NULL. */
double serlaq_adapter_speech_seconds(serlaq_adapter *a);

/* Adapts the model to the clips gathered (`opts` NULL = defaults) and writes the adapted
 * model to *out (free it with serlaq_model_free). SERLAQ_ERR_TOO_LITTLE: fewer than 20
 * clips or 20 s of speech, the message says how much more; the clips stay, add more and
 * call again. SERLAQ_ERR_ARGUMENT: a bad option (an unknown label, one twice, fewer than
 * two). *out is untouched on error. The adapter may be finished again (e.g. with other
 * options). */
int serlaq_adapter_finish(serlaq_adapter *a, const serlaq_adapt_options *opts, serlaq_model **out);

/* Frees an adapter; NULL is ignored. */
void serlaq_adapter_free(serlaq_adapter *a);

#ifdef __cplusplus
}
#endif

#endif /* SERLAQ_H */
