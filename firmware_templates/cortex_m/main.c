/* main.c - runs the edgeprune C model over the test windows in windows.h and prints,
 * through semihosting, one line per window:
 *
 *   EP BEGIN model=<name> windows=<N> input_len=<L> classes=<C> scratch=<bytes> stack_size=<bytes>
 *   EP W <i> class=<c> expected=<e> ticks=<t> stack=<bytes> scores=<s0>,<s1>,...
 *   EP END windows=<N> mismatches=<m> stack_max=<bytes>
 *
 * ticks: SysTick processor-clock ticks spent in predict() (x40 = instructions under
 * qemu -icount shift=0); stack: bytes of stack predict() used; stack_max: the
 * high-water mark of the whole program. The host compares classes with its reference;
 * the firmware exits 0 once every line is printed (EP_EXIT_FAULT on a fault). */
#include <stdint.h>

#include "board.h"
#include "ep_config.h"
#include "windows.h"

/* Working memory of the model, word-aligned. */
#define EP_SCRATCH_WORDS ((EP_SCRATCH_BYTES + 3) / 4 > 0 ? (EP_SCRATCH_BYTES + 3) / 4 : 1)
static uint32_t ep_scratch[EP_SCRATCH_WORDS];

/* Empty markers around predict(): an exact instruction count from a QEMU trace counts
 * the instructions executed from ep_mark_begin to ep_mark_end. */
__attribute__((noinline, used)) void ep_mark_begin(void) { __asm__ volatile(""); }
__attribute__((noinline, used)) void ep_mark_end(void) { __asm__ volatile(""); }

static void print_header(void)
{
    char line[160];
    unsigned pos = 0;
    ep_fmt_str(line, sizeof line, &pos, "EP BEGIN model=" EP_MODEL_NAME " windows=");
    ep_fmt_uint(line, sizeof line, &pos, EP_NUM_WINDOWS);
    ep_fmt_str(line, sizeof line, &pos, " input_len=");
    ep_fmt_uint(line, sizeof line, &pos, EP_INPUT_LEN);
    ep_fmt_str(line, sizeof line, &pos, " classes=");
    ep_fmt_uint(line, sizeof line, &pos, EP_NUM_CLASSES);
    ep_fmt_str(line, sizeof line, &pos, " scratch=");
    ep_fmt_uint(line, sizeof line, &pos, EP_SCRATCH_BYTES);
    ep_fmt_str(line, sizeof line, &pos, " stack_size=");
    ep_fmt_uint(line, sizeof line, &pos, ep_stack_size());
    ep_fmt_str(line, sizeof line, &pos, "\n");
    ep_puts(line);
}

int main(void)
{
    int32_t scores[EP_NUM_CLASSES];
    uint32_t lowest = ep_stack_lowest();
    unsigned mismatches = 0;

    print_header();
    for (unsigned i = 0; i < EP_NUM_WINDOWS; ++i) {
        uint32_t low = ep_stack_lowest();
        if (low < lowest) {
            lowest = low;
        }
        ep_stack_repaint();
        uint32_t sp_before = ep_get_sp();

        ep_ticks_start();
        ep_mark_begin();
        int cls = EP_PREDICT(ep_windows[i], ep_scratch, scores);
        ep_mark_end();
        uint32_t ticks = ep_ticks_elapsed();

        low = ep_stack_lowest();
        if (low < lowest) {
            lowest = low;
        }
        if (ep_expected[i] >= 0 && cls != ep_expected[i]) {
            ++mismatches;
        }

        char line[64 + 12 * EP_NUM_CLASSES];
        unsigned pos = 0;
        ep_fmt_str(line, sizeof line, &pos, "EP W ");
        ep_fmt_uint(line, sizeof line, &pos, i);
        ep_fmt_str(line, sizeof line, &pos, " class=");
        ep_fmt_int(line, sizeof line, &pos, cls);
        ep_fmt_str(line, sizeof line, &pos, " expected=");
        ep_fmt_int(line, sizeof line, &pos, ep_expected[i]);
        ep_fmt_str(line, sizeof line, &pos, " ticks=");
        ep_fmt_uint(line, sizeof line, &pos, ticks);
        ep_fmt_str(line, sizeof line, &pos, " stack=");
        ep_fmt_uint(line, sizeof line, &pos, sp_before - low);
        ep_fmt_str(line, sizeof line, &pos, " scores=");
        for (unsigned k = 0; k < EP_NUM_CLASSES; ++k) {
            if (k > 0) {
                ep_fmt_str(line, sizeof line, &pos, ",");
            }
            ep_fmt_int(line, sizeof line, &pos, scores[k]);
        }
        ep_fmt_str(line, sizeof line, &pos, "\n");
        ep_puts(line);
    }

    uint32_t low = ep_stack_lowest();
    if (low < lowest) {
        lowest = low;
    }
    char line[96];
    unsigned pos = 0;
    ep_fmt_str(line, sizeof line, &pos, "EP END windows=");
    ep_fmt_uint(line, sizeof line, &pos, EP_NUM_WINDOWS);
    ep_fmt_str(line, sizeof line, &pos, " mismatches=");
    ep_fmt_uint(line, sizeof line, &pos, mismatches);
    ep_fmt_str(line, sizeof line, &pos, " stack_max=");
    ep_fmt_uint(line, sizeof line, &pos, ep_stack_top() - lowest);
    ep_fmt_str(line, sizeof line, &pos, "\n");
    ep_puts(line);
    return EP_EXIT_OK;
}
