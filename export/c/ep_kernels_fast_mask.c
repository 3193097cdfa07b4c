/*
 * ep_kernels_fast_mask.c -- the bit-mask formats' row walks (bitmask, rowmask and their
 * short-row variants) and rle4's.
 * Part of the fast kernels (the default build; see ep_kernels.h). Bit-exact with the
 * portable reference ep_kernels_ref.c (tests/test_cmodel.py, tests/test_kernels_builds.py).
 */
#include "ep_kernels_fast.h"

#ifndef EP_KERNELS_SMALL

EP_FAST_FN void ep_rows_bitmask(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    unsigned r;
    uint32_t pos = k->pos, bits = k->bits, base = k->base, rs = k->rs;
    const uint8_t *q = (const uint8_t *)k->cnt;
    const uint8_t *end = (const uint8_t *)k->col;
    for (r = 0; r < n; r++) {
        const uint32_t re = rs + cols;
        int32_t sum = 0;
        while (pos < re) {
            sum += (int32_t)*w++ * x[pos - rs];
            bits &= bits - 1u;
            pos = bits ? base + EP_CTZ(bits) : ep_bm_next(&bits, &base, &q, end);
        }
        y[r] = sum;
        rs = re;
    }
    k->pos = pos;
    k->bits = bits;
    k->base = base;
    k->rs = rs;
    k->cnt = q;
    k->w = w;
}

EP_FAST_FN void ep_rows_bm_short(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    unsigned r;
    /* acc: mask bits not yet used (avail of them), loaded a byte at a time as needed,
     * so no byte past the mask is read */
    uint32_t acc = k->bits, avail = k->base;
    const uint32_t rmask = ((uint32_t)1 << cols) - 1u;
    const uint8_t *q = (const uint8_t *)k->cnt;
    for (r = 0; r < n; r++) {
        uint32_t rb;
        int32_t sum = 0;
        while (avail < cols) {
            acc |= (uint32_t)*q++ << avail;
            avail += 8u;
        }
        rb = acc & rmask;
        acc >>= cols;
        avail -= cols;
        if (rb != 0u) {
            do {
                sum += (int32_t)*w++ * x[EP_CTZ(rb)];
                rb &= rb - 1u;
            } while (rb != 0u);
        }
        y[r] = sum;
    }
    k->bits = acc;
    k->base = avail;
    k->cnt = q;
    k->w = w;
}

/*
 * Rows of at most 5 columns given by their bit pattern: x0 .. x4 in registers, sum and w
 * updated; one jump per row to its sequence of multiply-adds.
 */
#define EP_T(c) sum += (int32_t)*w++ * x##c
#define EP_MASK5_SWITCH(bits) \
    switch (bits) { \
    case 1: EP_T(0); break; \
    case 2: EP_T(1); break; \
    case 3: EP_T(0); EP_T(1); break; \
    case 4: EP_T(2); break; \
    case 5: EP_T(0); EP_T(2); break; \
    case 6: EP_T(1); EP_T(2); break; \
    case 7: EP_T(0); EP_T(1); EP_T(2); break; \
    case 8: EP_T(3); break; \
    case 9: EP_T(0); EP_T(3); break; \
    case 10: EP_T(1); EP_T(3); break; \
    case 11: EP_T(0); EP_T(1); EP_T(3); break; \
    case 12: EP_T(2); EP_T(3); break; \
    case 13: EP_T(0); EP_T(2); EP_T(3); break; \
    case 14: EP_T(1); EP_T(2); EP_T(3); break; \
    case 15: EP_T(0); EP_T(1); EP_T(2); EP_T(3); break; \
    case 16: EP_T(4); break; \
    case 17: EP_T(0); EP_T(4); break; \
    case 18: EP_T(1); EP_T(4); break; \
    case 19: EP_T(0); EP_T(1); EP_T(4); break; \
    case 20: EP_T(2); EP_T(4); break; \
    case 21: EP_T(0); EP_T(2); EP_T(4); break; \
    case 22: EP_T(1); EP_T(2); EP_T(4); break; \
    case 23: EP_T(0); EP_T(1); EP_T(2); EP_T(4); break; \
    case 24: EP_T(3); EP_T(4); break; \
    case 25: EP_T(0); EP_T(3); EP_T(4); break; \
    case 26: EP_T(1); EP_T(3); EP_T(4); break; \
    case 27: EP_T(0); EP_T(1); EP_T(3); EP_T(4); break; \
    case 28: EP_T(2); EP_T(3); EP_T(4); break; \
    case 29: EP_T(0); EP_T(2); EP_T(3); EP_T(4); break; \
    case 30: EP_T(1); EP_T(2); EP_T(3); EP_T(4); break; \
    case 31: EP_T(0); EP_T(1); EP_T(2); EP_T(3); EP_T(4); break; \
    default: break; \
    }

/*
 * Bitmask rows of at most 5 columns (e.g. W2 with w_rank 5): x[0..4] stay in registers
 * and each row's bit pattern selects its sequence of multiply-adds (one jump per row).
 */
EP_FAST_FN void ep_rows_bm_tiny(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    const int32_t x0 = x[0], x1 = cols > 1u ? x[1] : 0, x2 = cols > 2u ? x[2] : 0;
    const int32_t x3 = cols > 3u ? x[3] : 0, x4 = cols > 4u ? x[4] : 0;
    int32_t *const yend = y + n;
    uint32_t acc = k->bits, avail = k->base; /* as in ep_rows_bm_short */
    const uint32_t rmask = ((uint32_t)1 << cols) - 1u;
    const uint8_t *q = (const uint8_t *)k->cnt;
    while (y != yend) {
        int32_t sum = 0;
        uint32_t rb;
        if (avail < cols) { /* cols <= 5 < 8: one byte is always enough */
            acc |= (uint32_t)*q++ << avail;
            avail += 8u;
        }
        rb = acc & rmask;
        acc >>= cols;
        avail -= cols;
EP_MASK5_SWITCH(rb);
        *y++ = sum;
    }
    k->bits = acc;
    k->base = avail;
    k->cnt = q;
    k->w = w;
}

/* Bitmask rows that start on a byte (cols a multiple of 8): a row's mask bytes in turn. */
EP_FAST_FN void ep_rows_bm_bytes(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned nb = k->cols >> 3;
    const int8_t *w = k->w;
    const uint8_t *q = (const uint8_t *)k->cnt;
    int32_t *const yend = y + n;
    while (y != yend) {
        const uint8_t *const qend = q + nb;
        const int16_t *xb = x;
        int32_t sum = 0;
        do {
            uint32_t b = *q++;
            if (b != 0u) {
                do {
                    sum += (int32_t)*w++ * xb[EP_CTZ(b)];
                    b &= b - 1u;
                } while (b != 0u);
            }
            xb += 8;
        } while (q != qend);
        *y++ = sum;
    }
    k->cnt = q;
    k->w = w;
}

/*
 * The same rows when they are dense enough (EP_BM_NIB): each mask byte as two nibbles; a
 * nibble's pattern selects its run of multiply-adds (one jump, x at fixed offsets).
 */
#define EP_BT(xp, c) sum += (int32_t)*w++ * (xp)[c]
#define EP_NIBBLE(m, xp) \
    switch (m) { \
    case 0: break; \
    case 1: EP_BT(xp, 0); break; \
    case 2: EP_BT(xp, 1); break; \
    case 3: EP_BT(xp, 0); EP_BT(xp, 1); break; \
    case 4: EP_BT(xp, 2); break; \
    case 5: EP_BT(xp, 0); EP_BT(xp, 2); break; \
    case 6: EP_BT(xp, 1); EP_BT(xp, 2); break; \
    case 7: EP_BT(xp, 0); EP_BT(xp, 1); EP_BT(xp, 2); break; \
    case 8: EP_BT(xp, 3); break; \
    case 9: EP_BT(xp, 0); EP_BT(xp, 3); break; \
    case 10: EP_BT(xp, 1); EP_BT(xp, 3); break; \
    case 11: EP_BT(xp, 0); EP_BT(xp, 1); EP_BT(xp, 3); break; \
    case 12: EP_BT(xp, 2); EP_BT(xp, 3); break; \
    case 13: EP_BT(xp, 0); EP_BT(xp, 2); EP_BT(xp, 3); break; \
    case 14: EP_BT(xp, 1); EP_BT(xp, 2); EP_BT(xp, 3); break; \
    case 15: EP_BT(xp, 0); EP_BT(xp, 1); EP_BT(xp, 2); EP_BT(xp, 3); break; \
    default: /* m <= 15 */ \
        EP_UNREACHABLE; \
    }
EP_FAST_FN void ep_rows_bm_nib(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned nb = k->cols >> 3;
    const int8_t *w = k->w;
    const uint8_t *q = (const uint8_t *)k->cnt;
    int32_t *const yend = y + n;
    while (y != yend) {
        const uint8_t *const qend = q + nb;
        const int16_t *xb = x;
        int32_t sum = 0;
        do {
            const uint32_t b = *q++;
            EP_NIBBLE(b & 15u, xb)
            EP_NIBBLE(b >> 4, xb + 4)
            xb += 8;
        } while (q != qend);
        *y++ = sum;
    }
    k->cnt = q;
    k->w = w;
}

/* Rowmask rows (one mask byte each). */
EP_FAST_FN void ep_rows_rowmask(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const int8_t *w = k->w;
    const uint8_t *q = (const uint8_t *)k->cnt;
    int32_t *const yend = y + n;
    while (y != yend) {
        uint32_t rb = *q++;
        int32_t sum = 0;
        if (rb != 0u) {
            do {
                sum += (int32_t)*w++ * x[EP_CTZ(rb)];
                rb &= rb - 1u;
            } while (rb != 0u);
        }
        *y++ = sum;
    }
    k->cnt = q;
    k->w = w;
}

/* Rowmask rows of at most 5 columns: x in registers, one jump per row. */
#if EP_USE_DSP && (defined(__GNUC__) || defined(__clang__))
/*
 * Thumb-2: n >= 1 rows; each row's pattern (< 32) jumps (TBH, no range check) to its
 * multiply-adds, which end at the shared store and loop test.
 */
/* the end of a row (every pattern has its own copy: no branch to a shared one) */
#define EP_RM5_NEXT \
    "str %[s], [%[y]], #4\n" \
    "subs %[n], %[n], #1\n" \
    "bne .Lrm%=l\n" \
    "b .Lrm%=x\n"
#define EP_ROWS_RM5() \
    __asm__(".Lrm%=l:\n" \
    "ldrb %[m], [%[q]], #1\n" \
    "and %[m], %[m], #31\n" \
    "tbh [pc, %[m], lsl #1]\n" \
    ".Lrm%=t:\n" \
    ".hword (.Lrm%=0 - .Lrm%=t) / 2, (.Lrm%=1 - .Lrm%=t) / 2, (.Lrm%=2 - .Lrm%=t) / 2, (.Lrm%=3 - .Lrm%=t) / 2, (.Lrm%=4 - .Lrm%=t) / 2, (.Lrm%=5 - .Lrm%=t) / 2, (.Lrm%=6 - .Lrm%=t) / 2, (.Lrm%=7 - .Lrm%=t) / 2, (.Lrm%=8 - .Lrm%=t) / 2, (.Lrm%=9 - .Lrm%=t) / 2, (.Lrm%=10 - .Lrm%=t) / 2, (.Lrm%=11 - .Lrm%=t) / 2, (.Lrm%=12 - .Lrm%=t) / 2, (.Lrm%=13 - .Lrm%=t) / 2, (.Lrm%=14 - .Lrm%=t) / 2, (.Lrm%=15 - .Lrm%=t) / 2, (.Lrm%=16 - .Lrm%=t) / 2, (.Lrm%=17 - .Lrm%=t) / 2, (.Lrm%=18 - .Lrm%=t) / 2, (.Lrm%=19 - .Lrm%=t) / 2, (.Lrm%=20 - .Lrm%=t) / 2, (.Lrm%=21 - .Lrm%=t) / 2, (.Lrm%=22 - .Lrm%=t) / 2, (.Lrm%=23 - .Lrm%=t) / 2, (.Lrm%=24 - .Lrm%=t) / 2, (.Lrm%=25 - .Lrm%=t) / 2, (.Lrm%=26 - .Lrm%=t) / 2, (.Lrm%=27 - .Lrm%=t) / 2, (.Lrm%=28 - .Lrm%=t) / 2, (.Lrm%=29 - .Lrm%=t) / 2, (.Lrm%=30 - .Lrm%=t) / 2, (.Lrm%=31 - .Lrm%=t) / 2\n" \
    ".Lrm%=1:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    EP_RM5_NEXT \
    ".Lrm%=2:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    EP_RM5_NEXT \
    ".Lrm%=3:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=4:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x2]\n" \
    EP_RM5_NEXT \
    ".Lrm%=5:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=6:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=7:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=8:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x3]\n" \
    EP_RM5_NEXT \
    ".Lrm%=9:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=10:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=11:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=12:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x2]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=13:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=14:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=15:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=16:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x4]\n" \
    EP_RM5_NEXT \
    ".Lrm%=17:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=18:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=19:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=20:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x2]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=21:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=22:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=23:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=24:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x3]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=25:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=26:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=27:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=28:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x2]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=29:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=30:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x1]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=31:\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mul %[s], %[t], %[x0]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x1], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x2], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x3], %[s]\n" \
    "ldrsb %[t], [%[w]], #1\n" \
    "mla %[s], %[t], %[x4], %[s]\n" \
    EP_RM5_NEXT \
    ".Lrm%=0:\n" \
    "mov %[s], #0\n" \
    ".Lrm%=e:\n" \
    "str %[s], [%[y]], #4\n" \
    "subs %[n], %[n], #1\n" \
    "bne .Lrm%=l\n" \
    ".Lrm%=x:\n" \
            : [w] "+r"(w), [q] "+r"(q), [y] "+r"(y), [n] "+r"(n), [s] "=&r"(sum), \
              [t] "=&r"(t_), [m] "=&r"(m_) \
            : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3), [x4] "r"(x4) \
            : "memory", "cc")
#endif
EP_FAST_FN void ep_rows_rm_tiny(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    const int32_t x0 = x[0], x1 = cols > 1u ? x[1] : 0, x2 = cols > 2u ? x[2] : 0;
    const int32_t x3 = cols > 3u ? x[3] : 0, x4 = cols > 4u ? x[4] : 0;
    const uint8_t *q = (const uint8_t *)k->cnt;
#ifdef EP_ROWS_RM5
    if (n != 0u) { /* the masks of rows of <= 5 columns are < 32 */
        int32_t sum, t_;
        uint32_t m_;
        EP_ROWS_RM5();
    }
#else
    int32_t *const yend = y + n;
    while (y != yend) {
        int32_t sum = 0;
        EP_MASK5_SWITCH(*q++);
        *y++ = sum;
    }
#endif
    k->cnt = q;
    k->w = w;
}

EP_FAST_FN void ep_rows_rle4(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    unsigned r;
    (void)x;
    /*
     * A state machine over the codes. c: column of the pending nonzero relative to the
     * current row (>= cols: a later row); at take_lo/take_hi the gap after it starts in
     * the low/high nibble of *q. k->bits saves which one; k->pos saves c.
     */
    const int8_t *wend = (const int8_t *)k->col;
    const uint8_t *q = (const uint8_t *)k->cnt;
    uint32_t c = k->pos, nn;
    int32_t sum = 0;
    r = 0;
    if (n == 0u) {
        return;
    }
    if (c == EP_NONE_LEFT) {
        goto rle4_rest;
    }
    if (k->bits) {
        goto rle4_take_hi;
    }
rle4_take_lo:
    while (c >= cols) {
        y[r] = sum;
        sum = 0;
        c -= cols;
        if (++r == n) {
            k->bits = 0u;
            goto rle4_save;
        }
    }
    sum += (int32_t)*w++ * x[c];
    if (w == wend) {
        goto rle4_last;
    }
    c++;
rle4_read_lo:
    nn = *q & 15u;
    c += nn;
    if (nn != 15u) {
        goto rle4_take_hi;
    }
rle4_read_hi:
    nn = (uint32_t)*q++ >> 4;
    c += nn;
    if (nn != 15u) {
        goto rle4_take_lo;
    }
    goto rle4_read_lo;
rle4_take_hi:
    while (c >= cols) {
        y[r] = sum;
        sum = 0;
        c -= cols;
        if (++r == n) {
            k->bits = 1u;
            goto rle4_save;
        }
    }
    sum += (int32_t)*w++ * x[c];
    if (w == wend) {
        goto rle4_last;
    }
    c++;
    goto rle4_read_hi;
rle4_last:
    y[r++] = sum;
    c = EP_NONE_LEFT;
rle4_rest:
    for (; r < n; r++) {
        y[r] = 0;
    }
rle4_save:
    k->pos = c;
    k->cnt = q;
    k->w = w;
}

EP_FAST_FN void ep_rows_zero(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    unsigned r;
    (void)k; /* an all-zero block has nothing to skip */
    (void)x;
    for (r = 0; r < n; r++) {
        y[r] = 0;
    }
}

#endif /* !EP_KERNELS_SMALL */
