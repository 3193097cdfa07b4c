/*
 * ep_kernels_fast_csr_rq.c -- the csr8n/csr8 row walks of the low-rank products with their
 * requantisation fused in (Thumb-2 DSP cores only).
 * Part of the fast kernels (the default build; see ep_kernels.h). Bit-exact with the
 * portable reference ep_kernels_ref.c (tests/test_cmodel.py, tests/test_kernels_builds.py).
 */
#include "ep_kernels_fast.h"

#ifndef EP_KERNELS_SMALL

#ifdef EP_ROWS_RQ
/*
 * The first low-rank products (a = W1 x, v = U1 h) in csr8n or csr8 with their
 * requantisation in the same pass: y[i] = sat16(ep_requant(row i . x, mult, shift)) as
 * ep_rq_sat16_rows computes it (shift >= 33 only: SMMLA with 2^(shift-33), ASR by
 * shift - 32, SSAT 16), stored as int16 by the asm rows (their runs of multiply-adds
 * as in EP_CSR8N_PAIRS / EP_CSR8_ROWS, only the row's store differs).
 */
#define EP_CSR8N_PAIRS_RQ() \
    __asm__(".Lcq%=l:\n" \
    "ldrb %[c], [%[cnt]], #1\n" \
    "and %[t1], %[c], #15\n" \
    "mov %[s], #0\n" \
    "tbb [pc, %[t1]]\n" \
    ".Lcq%=ta:\n" \
    ".byte (.Lcq%=a0 - .Lcq%=ta) / 2, (.Lcq%=a1 - .Lcq%=ta) / 2, (.Lcq%=a2 - .Lcq%=ta) / 2, (.Lcq%=a3 - .Lcq%=ta) / 2, (.Lcq%=a4 - .Lcq%=ta) / 2, (.Lcq%=a5 - .Lcq%=ta) / 2, (.Lcq%=a6 - .Lcq%=ta) / 2, (.Lcq%=a7 - .Lcq%=ta) / 2, (.Lcq%=a8 - .Lcq%=ta) / 2, (.Lcq%=a9 - .Lcq%=ta) / 2, (.Lcq%=a10 - .Lcq%=ta) / 2, (.Lcq%=a11 - .Lcq%=ta) / 2, (.Lcq%=a12 - .Lcq%=ta) / 2, (.Lcq%=a13 - .Lcq%=ta) / 2, (.Lcq%=a14 - .Lcq%=ta) / 2, (.Lcq%=a15 - .Lcq%=ta) / 2\n" \
    ".Lcq%=a15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=a0:\n" \
    "smmla %[s], %[s], %[m], %[r]\n" \
    "asr %[s], %[s], %[sh]\n" \
    "ssat %[s], #16, %[s]\n" \
    "strh %[s], [%[y]], #2\n" \
    "lsr %[t1], %[c], #4\n" \
    "mov %[s], #0\n" \
    "tbb [pc, %[t1]]\n" \
    ".Lcq%=tb:\n" \
    ".byte (.Lcq%=b0 - .Lcq%=tb) / 2, (.Lcq%=b1 - .Lcq%=tb) / 2, (.Lcq%=b2 - .Lcq%=tb) / 2, (.Lcq%=b3 - .Lcq%=tb) / 2, (.Lcq%=b4 - .Lcq%=tb) / 2, (.Lcq%=b5 - .Lcq%=tb) / 2, (.Lcq%=b6 - .Lcq%=tb) / 2, (.Lcq%=b7 - .Lcq%=tb) / 2, (.Lcq%=b8 - .Lcq%=tb) / 2, (.Lcq%=b9 - .Lcq%=tb) / 2, (.Lcq%=b10 - .Lcq%=tb) / 2, (.Lcq%=b11 - .Lcq%=tb) / 2, (.Lcq%=b12 - .Lcq%=tb) / 2, (.Lcq%=b13 - .Lcq%=tb) / 2, (.Lcq%=b14 - .Lcq%=tb) / 2, (.Lcq%=b15 - .Lcq%=tb) / 2\n" \
    ".Lcq%=b15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcq%=b0:\n" \
    "smmla %[s], %[s], %[m], %[r]\n" \
    "asr %[s], %[s], %[sh]\n" \
    "ssat %[s], #16, %[s]\n" \
    "strh %[s], [%[y]], #2\n" \
    "subs %[p], %[p], #1\n" \
    "bne .Lcq%=l\n" \
            : [w] "+r"(w), [col] "+r"(col), [cnt] "+r"(count), [y] "+r"(y), \
              [p] "+r"(pairs), [s] "=&r"(s_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), \
              [c] "=&r"(c_) \
            : [x] "r"(x), [m] "r"(mult), [r] "r"(rnd), [sh] "r"(sh) \
            : "memory", "cc")
#define EP_CSR8_ROWS_RQ() \
    __asm__("b .Lq8%=l\n" \
    ".Lq8%=long:\n" \
    "sub %[c], %[c], #15\n" \
    ".Lq8%=m:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    "subs %[c], %[c], #1\n" \
    "bne .Lq8%=m\n" \
    "mov %[c], #15\n" \
    "b .Lq8%=j\n" \
    ".Lq8%=l:\n" \
    "ldrb %[c], [%[cnt]], #1\n" \
    "mov %[s], #0\n" \
    "cmp %[c], #15\n" \
    "bhi .Lq8%=long\n" \
    ".Lq8%=j:\n" \
    "tbb [pc, %[c]]\n" \
    ".Lq8%=ta:\n" \
    ".byte (.Lq8%=a0 - .Lq8%=ta) / 2, (.Lq8%=a1 - .Lq8%=ta) / 2, (.Lq8%=a2 - .Lq8%=ta) / 2, (.Lq8%=a3 - .Lq8%=ta) / 2, (.Lq8%=a4 - .Lq8%=ta) / 2, (.Lq8%=a5 - .Lq8%=ta) / 2, (.Lq8%=a6 - .Lq8%=ta) / 2, (.Lq8%=a7 - .Lq8%=ta) / 2, (.Lq8%=a8 - .Lq8%=ta) / 2, (.Lq8%=a9 - .Lq8%=ta) / 2, (.Lq8%=a10 - .Lq8%=ta) / 2, (.Lq8%=a11 - .Lq8%=ta) / 2, (.Lq8%=a12 - .Lq8%=ta) / 2, (.Lq8%=a13 - .Lq8%=ta) / 2, (.Lq8%=a14 - .Lq8%=ta) / 2, (.Lq8%=a15 - .Lq8%=ta) / 2\n" \
    ".Lq8%=a15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lq8%=a0:\n" \
    "smmla %[s], %[s], %[m], %[r]\n" \
    "asr %[s], %[s], %[sh]\n" \
    "ssat %[s], #16, %[s]\n" \
    "strh %[s], [%[y]], #2\n" \
    "subs %[n], %[n], #1\n" \
    "bne .Lq8%=l\n" \
            : [w] "+r"(w), [col] "+r"(col), [cnt] "+r"(count), [y] "+r"(y), \
              [n] "+r"(n), [s] "=&r"(s_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), \
              [c] "=&r"(c_) \
            : [x] "r"(x), [m] "r"(mult), [r] "r"(rnd), [sh] "r"(sh) \
            : "memory", "cc")

EP_INLINE int16_t ep_rq16_fast(int32_t acc, int32_t mult, int32_t rnd, uint32_t sh)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(acc), "r"(mult), "r"(rnd));
    return (int16_t)__ssat(r >> sh, 16);
}

EP_FAST_FN void ep_rows_csr8n_rq(ep_cursor_t *k, unsigned n, const int16_t *x, int16_t *y,
                                  int32_t mult, int shift)
{
    const int8_t *w = k->w;
    const uint8_t *count = (const uint8_t *)k->cnt;
    const uint8_t *col = (const uint8_t *)k->col;
    const int32_t rnd = (int32_t)1 << (shift - 33);
    const uint32_t sh = (uint32_t)shift - 32u;
    unsigned pairs;
    if (n == 0u) {
        return;
    }
    if (k->bits) { /* the block starts at a high nibble */
        *y++ = ep_rq16_fast(ep_dot_csr8(&w, &col, x, (unsigned)*count++ >> 4), mult, rnd, sh);
        n--;
    }
    pairs = n >> 1;
    if (pairs != 0u) {
        int32_t s_, t1_, t2_;
        uint32_t c_;
        EP_CSR8N_PAIRS_RQ();
    }
    k->bits = n & 1u;
    if (n & 1u) {
        *y = ep_rq16_fast(ep_dot_csr8(&w, &col, x, *count & 15u), mult, rnd, sh);
    }
    k->cnt = count;
    k->col = col;
    k->w = w;
}

EP_FAST_FN void ep_rows_csr8_rq(ep_cursor_t *k, unsigned n, const int16_t *x, int16_t *y,
                                 int32_t mult, int shift)
{
    const int8_t *w = k->w;
    const uint8_t *count = (const uint8_t *)k->cnt;
    const uint8_t *col = (const uint8_t *)k->col;
    const int32_t rnd = (int32_t)1 << (shift - 33);
    const uint32_t sh = (uint32_t)shift - 32u;
    if (n != 0u) {
        int32_t s_, t1_, t2_;
        uint32_t c_;
        EP_CSR8_ROWS_RQ();
    }
    k->cnt = count;
    k->col = col;
    k->w = w;
}
#endif

#endif /* !EP_KERNELS_SMALL */
