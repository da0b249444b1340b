/*
 * adapt.c: a device adapting its model to the room it sits in, from serlaq.h alone.
 *
 *   adapt MODEL.laq OUT.laq [--labels a,b,...] CLIP...
 *       gathers each clip (one utterance per file), adapts the model to them and writes
 *       OUT.laq atomically: the file `serlaq adapt MODEL CLIP... --out OUT.laq` writes.
 *       A clip that cannot be used gets one line on stderr and is left out. Too little
 *       audio: one line saying how much more is needed, nothing written, exit 1.
 *
 * On a device the clips come from its microphone: serlaq_adapter_add_pcm takes each
 * utterance's samples, and serlaq_adapter_speech_seconds says when there is enough.
 *
 * Build (from the repository root, after `make capi`; as docs/deploy.md):
 *   gcc examples/c/adapt.c -Idist/capi -Ldist/capi -lserlaq -Wl,-rpath,$PWD/dist/capi -o adapt   # shared
 *   gcc examples/c/adapt.c -Idist/capi dist/capi/libserlaq.a -lm -lpthread -ldl -o adapt         # static
 */
#include <stdio.h>
#include <string.h>

#include "serlaq.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.laq OUT.laq [--labels a,b,...] CLIP...\n", argv[0]);
        return 2;
    }
    serlaq_adapt_options opts = serlaq_adapt_default_options();
    int first = 3;
    if (strcmp(argv[3], "--labels") == 0) {
        if (argc < 6) {
            fprintf(stderr, "usage: %s MODEL.laq OUT.laq [--labels a,b,...] CLIP...\n", argv[0]);
            return 2;
        }
        opts.labels = argv[4];
        first = 5;
    }
    serlaq_model *m = serlaq_model_open(argv[1]);
    if (!m) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
        return 1;
    }
    serlaq_adapter *a = serlaq_adapter_new(m);
    serlaq_model_free(m); /* the adapter keeps what it needs */
    if (!a) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
        return 1;
    }
    int clips = 0, left_out = 0;
    for (int i = first; i < argc; i++) {
        int n = serlaq_adapter_add_file(a, argv[i]);
        if (n < 0) {
            fprintf(stderr, "error: %s\n", serlaq_last_error());
            left_out++;
        } else {
            clips = n;
        }
    }
    serlaq_model *room = NULL;
    int rc = serlaq_adapter_finish(a, &opts, &room);
    if (rc == SERLAQ_OK) rc = serlaq_model_save(room, argv[2]);
    if (rc != SERLAQ_OK) {
        fprintf(stderr, "error: %s\n", serlaq_last_error());
    } else {
        printf("adapted %s on %d clips (%.1f s of speech, %d left out); wrote %s\n", argv[1], clips,
               serlaq_adapter_speech_seconds(a), left_out, argv[2]);
    }
    serlaq_model_free(room);
    serlaq_adapter_free(a);
    return rc == SERLAQ_OK ? 0 : 1;
}
