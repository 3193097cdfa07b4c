/*
 * ep_host_driver.c -- host test driver for one generated model.
 *
 * Build (the model header is forced in, with its generic aliases):
 *   cc -std=c99 -DEP_MODEL_DEFAULT_ALIASES -include <name>_model.h -I<dir> \
 *      ep_host_driver.c <name>_model.c ep_kernels_fast*.c -o driver
 * stdin: int16 little-endian windows, EP_MODEL_INPUT_LEN values each, back to back.
 * stdout: one line per window: "<class> <score0> <score1> ...".
 */
#include <stdint.h>
#include <stdio.h>

#include "ep_kernels.h"

#ifndef EP_MODEL_PREDICT
#error "compile with -DEP_MODEL_DEFAULT_ALIASES -include <name>_model.h"
#endif

static int16_t window[EP_MODEL_INPUT_LEN];
static int32_t scratch[(EP_MODEL_SCRATCH_BYTES + 3) / 4];

int main(void)
{
    int32_t scores[EP_MODEL_CLASSES];
    while (fread(window, sizeof window[0], EP_MODEL_INPUT_LEN, stdin) == EP_MODEL_INPUT_LEN) {
        int k, cls = EP_MODEL_PREDICT(window, scratch, scores);
        printf("%d", cls);
        for (k = 0; k < EP_MODEL_CLASSES; k++) {
            printf(" %ld", (long)scores[k]);
        }
        printf("\n");
    }
    return 0;
}
