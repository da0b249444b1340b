/*
 * predict.c: serlaq from C, written from serlaq.h alone.
 *
 *   predict MODEL.laq FILE...            one line per file: path, label, confidence,
 *                                        label=probability for every label, then the
 *                                        out-of-domain score (about 1 on the training data);
 *                                        when most files score above the model's threshold,
 *                                        one warning on stderr naming `serlaq adapt`
 *   predict MODEL.laq --stream RATE      mono float32 samples (native endian) on stdin, e.g.
 *                                        `ffmpeg -i call.mp3 -f f32le -ac 1 - | predict m.laq --stream 48000`;
 *                                        one line per window: start, end, label, confidence,
 *                                        out-of-domain score (nan for silence)
 *   predict MODEL.laq --stream RATE --running-norm
 *                                        the same, the stream adapting to its room
 *                                        (serlaq_stream_running_norm, default numbers)
 *
 * MODEL.laq may be `general`: the shipped model built into the library.
 *
 * Build (from the repository root, after `make capi`; as docs/deploy.md):
 *   gcc examples/c/predict.c -Idist/capi -Ldist/capi -lserlaq -Wl,-rpath,$PWD/dist/capi -o predict   # shared
 *   gcc examples/c/predict.c -Idist/capi dist/capi/libserlaq.a -lm -lpthread -ldl -o predict         # static
 * A file that fails gets one line on stderr (the others are still predicted); exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serlaq.h"

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* As `serlaq predict` warns: most of at least two clips above the out-of-domain threshold. */
static void warn_far_from_home(double *ood, int n, double threshold) {
    int far = 0;
    for (int i = 0; i < n; i++) far += ood[i] > threshold;
    if (n < 2 || 2 * far <= n) return;
    qsort(ood, (size_t)n, sizeof *ood, by_value);
    fprintf(stderr,
            "warning: %d of %d files lie far outside the model's training distribution (median out-of-domain "
            "score %.2f, threshold %.2f): its answers on them are unreliable; adapt the model to this audio "
            "first: serlaq adapt MODEL AUDIO... --out ADAPTED.laq\n",
            far, n, ood[n / 2], threshold);
}

static int predict_files(serlaq_model *m, int n, char **paths) {
    size_t k = serlaq_model_num_labels(m);
    float *probs = malloc(k * sizeof *probs);
    double *ood = malloc((size_t)n * sizeof *ood);
    int failed = 0, scored = 0;
    if (!probs || !ood) {
        free(probs);
        free(ood);
        return 1;
    }
    for (int f = 0; f < n; f++) {
        if (serlaq_predict_file_ood(m, paths[f], probs, &ood[scored]) != SERLAQ_OK) {
            fprintf(stderr, "error: %s\n", serlaq_last_error());
            failed = 1;
            continue;
        }
        size_t best = 0;
        for (size_t i = 1; i < k; i++)
            if (probs[i] > probs[best]) best = i;
        printf("%s\t%s\t%.9g\t", paths[f], serlaq_model_label(m, best), probs[best]);
        for (size_t i = 0; i < k; i++)
            printf("%s%s=%.9g", i ? "," : "", serlaq_model_label(m, i), probs[i]);
        printf("\t%.9g\n", ood[scored++]);
    }
    warn_far_from_home(ood, scored, serlaq_model_ood_threshold(m));
    free(probs);
    free(ood);
    return failed;
}

static void print_segments(serlaq_model *m, serlaq_stream *s) {
    serlaq_segment seg;
    double ood;
    while (serlaq_stream_next_ood(s, &seg, NULL, &ood) == 1) {
        const char *label = seg.label < 0 ? "silence" : serlaq_model_label(m, (size_t)seg.label);
        printf("%.3f\t%.3f\t%s\t%.9g\t%.9g\n", seg.start_seconds, seg.end_seconds, label, seg.confidence, ood);
    }
}

static int stream_stdin(serlaq_model *m, unsigned long rate, int running_norm) {
    serlaq_stream_options opts = serlaq_stream_default_options();
    serlaq_stream *s = serlaq_stream_new(m, (uint32_t)rate, &opts);
    float chunk[4096];
    size_t n;
    if (!s) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
        return 1;
    }
    if (running_norm && serlaq_stream_running_norm(s, SERLAQ_RUNNING_PRIOR, SERLAQ_RUNNING_HORIZON, 1) != SERLAQ_OK) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
        serlaq_stream_free(s);
        return 1;
    }
    while ((n = fread(chunk, sizeof chunk[0], sizeof chunk / sizeof chunk[0], stdin)) > 0) {
        if (serlaq_stream_push(s, chunk, n) < 0) {
            fprintf(stderr, "error: %s\n", serlaq_last_error());
            serlaq_stream_free(s);
            return 1;
        }
        print_segments(m, s);
    }
    int rc = serlaq_stream_flush(s) < 0;
    if (rc) fprintf(stderr, "error: %s\n", serlaq_last_error());
    print_segments(m, s);
    serlaq_stream_free(s);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.laq FILE...\n       %s MODEL.laq --stream RATE [--running-norm] < samples.f32\n",
                argv[0], argv[0]);
        return 2;
    }
    serlaq_model *m = serlaq_model_open(argv[1]);
    if (!m) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
        return 1;
    }
    int rc;
    if (strcmp(argv[2], "--stream") == 0) {
        char *end = NULL;
        int running_norm = argc == 5 && strcmp(argv[4], "--running-norm") == 0;
        unsigned long rate = argc >= 4 ? strtoul(argv[3], &end, 10) : 0;
        if ((argc != 4 && !running_norm) || !end || *end || rate == 0 || rate > 0xffffffffUL) {
            fprintf(stderr, "--stream needs a sample rate in Hz (then optionally --running-norm)\n");
            serlaq_model_free(m);
            return 2;
        }
        rc = stream_stdin(m, rate, running_norm);
    } else {
        rc = predict_files(m, argc - 2, argv + 2);
    }
    serlaq_model_free(m);
    return rc;
}
