/*
 * ep_kernels_fast_csr.c -- dense and compressed-row (csr8, csr8n, csr16) row walks:
 * SMLAD pairs for dense rows, Thumb-2 jump tables into unrolled multiply-adds for short rows.
 * Part of the fast kernels (the default build; see ep_kernels.h). Bit-exact with the
 * portable reference ep_kernels_ref.c (tests/test_cmodel.py, tests/test_kernels_builds.py).
 */
#include "ep_kernels_fast.h"

#ifndef EP_KERNELS_SMALL

/*
 * sum_c w[c] * x[c] over one dense row; each full group of 4 weights is stored as columns
 * (0, 2, 1, 3), so that SXTB16 of the word (bytes 0, 2) and of it rotated by 8 (bytes
 * 1, 3) give the pairs that line up with the int16 input pairs (x0, x1) and (x2, x3).
 */
EP_NOINLINE int32_t ep_dot_dense(const int8_t *w, const int16_t *x, unsigned cols)
{
    int32_t sum = 0;
    unsigned c;
#if EP_USE_DSP
    unsigned g = cols >> 2;
    if (g != 0u) {
        do {
            uint32_t wq, x01, x23;
            memcpy(&wq, w, 4);
            memcpy(&x01, x, 4);
            memcpy(&x23, x + 2, 4);
            sum = __smlad(__sxtb16(wq), (int32_t)x01, sum);
            sum = __smlad(__sxtb16((wq >> 8) | (wq << 24)), (int32_t)x23, sum);
            w += 4;
            x += 4;
        } while (--g != 0u);
    }
#else
    for (c = cols >> 2; c > 0u; c--) {
        sum += (int32_t)w[0] * x[0] + (int32_t)w[2] * x[1] + (int32_t)w[1] * x[2] +
               (int32_t)w[3] * x[3];
        w += 4;
        x += 4;
    }
#endif
    for (c = 0; c < (cols & 3u); c++) {
        sum += (int32_t)w[c] * x[c];
    }
    return sum;
}

#if EP_USE_DSP
/* SXTB16 of v rotated right by 8 (bytes 1 and 3), one instruction. */
EP_INLINE int32_t ep_sxtb16_ror8(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/*
 * Two dense rows at once (w and w + cols): each pair of input words is loaded once for
 * both rows. The same sums as ep_dot_dense's.
 */
EP_NOINLINE void ep_dot_dense2(const int8_t *w, unsigned cols, const int16_t *x, int32_t *y)
{
    int32_t s0 = 0, s1 = 0;
    unsigned c, g = cols >> 3;
#define EP_DENSE2_GROUP(o) \
    do { \
        uint32_t wa, wb, x01, x23; \
        memcpy(&wa, w + (o), 4); \
        memcpy(&wb, w + cols + (o), 4); \
        memcpy(&x01, x + (o), 4); \
        memcpy(&x23, x + (o) + 2, 4); \
        s0 = __smlad(__sxtb16(wa), (int32_t)x01, s0); \
        s1 = __smlad(__sxtb16(wb), (int32_t)x01, s1); \
        s0 = __smlad(ep_sxtb16_ror8(wa), (int32_t)x23, s0); \
        s1 = __smlad(ep_sxtb16_ror8(wb), (int32_t)x23, s1); \
    } while (0)
    for (; g != 0u; g--) { /* two groups of 4 columns per iteration */
        EP_DENSE2_GROUP(0);
        EP_DENSE2_GROUP(4);
        w += 8;
        x += 8;
    }
    if (cols & 4u) {
        EP_DENSE2_GROUP(0);
        w += 4;
        x += 4;
    }
#undef EP_DENSE2_GROUP
    for (c = 0; c < (cols & 3u); c++) {
        s0 += (int32_t)w[c] * x[c];
        s1 += (int32_t)w[cols + c] * x[c];
    }
    y[0] = s0;
    y[1] = s1;
}
#endif

EP_FAST_FN void ep_rows_dense(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const unsigned cols = k->cols;
    const int8_t *w = k->w;
    unsigned r = 0;
#if EP_USE_DSP
    for (; r + 1u < n; r += 2u) {
        ep_dot_dense2(w, cols, x, y + r);
        w += 2u * cols;
    }
#endif
    for (; r < n; r++) {
        y[r] = ep_dot_dense(w, x, cols);
        w += cols;
    }
    k->w = w;
}


/*
 * One csr8n row of c <= 15 nonzeros into *yp: a single jump into an unrolled run of 15
 * multiply-adds (Duff's device) that ends with the store; moves w and col.
 */
#define EP_CT sum += (int32_t)*w++ * x[*col++]
#if EP_USE_DSP && (defined(__GNUC__) || defined(__clang__))
/*
 * Thumb-2: pairs >= 1 count bytes (two rows each); each row is one jump (TBB, no range
 * check: a nibble is <= 15) into an unrolled run of 15 multiply-adds.
 */
#define EP_CSR8N_PAIRS() \
    __asm__(".Lcp%=l:\n" \
    "ldrb %[c], [%[cnt]], #1\n" \
    "and %[t1], %[c], #15\n" \
    "mov %[s], #0\n" \
    "tbb [pc, %[t1]]\n" \
    ".Lcp%=ta:\n" \
    ".byte (.Lcp%=a0 - .Lcp%=ta) / 2, (.Lcp%=a1 - .Lcp%=ta) / 2, (.Lcp%=a2 - .Lcp%=ta) / 2, (.Lcp%=a3 - .Lcp%=ta) / 2, (.Lcp%=a4 - .Lcp%=ta) / 2, (.Lcp%=a5 - .Lcp%=ta) / 2, (.Lcp%=a6 - .Lcp%=ta) / 2, (.Lcp%=a7 - .Lcp%=ta) / 2, (.Lcp%=a8 - .Lcp%=ta) / 2, (.Lcp%=a9 - .Lcp%=ta) / 2, (.Lcp%=a10 - .Lcp%=ta) / 2, (.Lcp%=a11 - .Lcp%=ta) / 2, (.Lcp%=a12 - .Lcp%=ta) / 2, (.Lcp%=a13 - .Lcp%=ta) / 2, (.Lcp%=a14 - .Lcp%=ta) / 2, (.Lcp%=a15 - .Lcp%=ta) / 2\n" \
    ".Lcp%=a15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=a0:\n" \
    "str %[s], [%[y]], #4\n" \
    "lsr %[t1], %[c], #4\n" \
    "mov %[s], #0\n" \
    "tbb [pc, %[t1]]\n" \
    ".Lcp%=tb:\n" \
    ".byte (.Lcp%=b0 - .Lcp%=tb) / 2, (.Lcp%=b1 - .Lcp%=tb) / 2, (.Lcp%=b2 - .Lcp%=tb) / 2, (.Lcp%=b3 - .Lcp%=tb) / 2, (.Lcp%=b4 - .Lcp%=tb) / 2, (.Lcp%=b5 - .Lcp%=tb) / 2, (.Lcp%=b6 - .Lcp%=tb) / 2, (.Lcp%=b7 - .Lcp%=tb) / 2, (.Lcp%=b8 - .Lcp%=tb) / 2, (.Lcp%=b9 - .Lcp%=tb) / 2, (.Lcp%=b10 - .Lcp%=tb) / 2, (.Lcp%=b11 - .Lcp%=tb) / 2, (.Lcp%=b12 - .Lcp%=tb) / 2, (.Lcp%=b13 - .Lcp%=tb) / 2, (.Lcp%=b14 - .Lcp%=tb) / 2, (.Lcp%=b15 - .Lcp%=tb) / 2\n" \
    ".Lcp%=b15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lcp%=b0:\n" \
    "str %[s], [%[y]], #4\n" \
    "subs %[p], %[p], #1\n" \
    "bne .Lcp%=l\n" \
            : [w] "+r"(w), [col] "+r"(col), [cnt] "+r"(count), [y] "+r"(y), \
              [p] "+r"(pairs), [s] "=&r"(s_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), \
              [c] "=&r"(c_) \
            : [x] "r"(x) \
            : "memory", "cc")
#else
#define EP_ROW_CSR15(c, yp) \
    sum = 0; \
    EP_OPAQUE(sum); \
    switch (c) { \
    case 15: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 14: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 13: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 12: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 11: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 10: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 9: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 8: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 7: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 6: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 5: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 4: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 3: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 2: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 1: \
        EP_CT; \
        EP_FALLTHROUGH; \
    case 0: \
        *(yp) = sum; \
        break; \
    default: /* c <= 15 */ \
        EP_UNREACHABLE; \
    }
#endif

EP_FAST_FN void ep_rows_csr8n(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const int8_t *w = k->w;
    const uint8_t *count = (const uint8_t *)k->cnt;
    const uint8_t *col = (const uint8_t *)k->col;
    unsigned pairs;
    if (n == 0u) {
        return;
    }
    if (k->bits) { /* the block starts at a high nibble */
        *y++ = ep_dot_csr8(&w, &col, x, (unsigned)*count++ >> 4);
        n--;
    }
    pairs = n >> 1;
    if (pairs != 0u) {
#ifdef EP_CSR8N_PAIRS
        int32_t s_, t1_, t2_;
        uint32_t c_;
        EP_CSR8N_PAIRS();
#else
        do { /* two rows per count byte */
            const unsigned c = *count++;
            int32_t sum;
            EP_ROW_CSR15(c & 15u, y)
            EP_ROW_CSR15(c >> 4, y + 1)
            y += 2;
        } while (--pairs != 0u);
#endif
    }
    k->bits = n & 1u;
    if (n & 1u) {
        *y = ep_dot_csr8(&w, &col, x, *count & 15u);
    }
    k->cnt = count;
    k->col = col;
    k->w = w;
}

#if EP_USE_DSP && (defined(__GNUC__) || defined(__clang__))
/*
 * Thumb-2: n >= 1 csr8 rows; a row of c <= 15 nonzeros is one jump (TBB) into an
 * unrolled run of 15 multiply-adds (as csr8n's), a longer one first takes its nonzeros
 * beyond 15 one at a time.
 */
#define EP_CSR8_ROWS() \
    __asm__("b .Lc8%=l\n" \
    ".Lc8%=long:\n" \
    "sub %[c], %[c], #15\n" \
    ".Lc8%=m:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    "subs %[c], %[c], #1\n" \
    "bne .Lc8%=m\n" \
    "mov %[c], #15\n" \
    "b .Lc8%=j\n" \
    ".Lc8%=l:\n" \
    "ldrb %[c], [%[cnt]], #1\n" \
    "mov %[s], #0\n" \
    "cmp %[c], #15\n" \
    "bhi .Lc8%=long\n" \
    ".Lc8%=j:\n" \
    "tbb [pc, %[c]]\n" \
    ".Lc8%=ta:\n" \
    ".byte (.Lc8%=a0 - .Lc8%=ta) / 2, (.Lc8%=a1 - .Lc8%=ta) / 2, (.Lc8%=a2 - .Lc8%=ta) / 2, (.Lc8%=a3 - .Lc8%=ta) / 2, (.Lc8%=a4 - .Lc8%=ta) / 2, (.Lc8%=a5 - .Lc8%=ta) / 2, (.Lc8%=a6 - .Lc8%=ta) / 2, (.Lc8%=a7 - .Lc8%=ta) / 2, (.Lc8%=a8 - .Lc8%=ta) / 2, (.Lc8%=a9 - .Lc8%=ta) / 2, (.Lc8%=a10 - .Lc8%=ta) / 2, (.Lc8%=a11 - .Lc8%=ta) / 2, (.Lc8%=a12 - .Lc8%=ta) / 2, (.Lc8%=a13 - .Lc8%=ta) / 2, (.Lc8%=a14 - .Lc8%=ta) / 2, (.Lc8%=a15 - .Lc8%=ta) / 2\n" \
    ".Lc8%=a15:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a14:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a13:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a12:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a11:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a10:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a9:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a8:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a7:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a6:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a5:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a4:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a3:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a2:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a1:\n" \
    "ldrb %[t1], [%[col]], #1\n" \
    "ldrsb %[t2], [%[w]], #1\n" \
    "ldrh %[t1], [%[x], %[t1], lsl #1]\n" \
    "smlabb %[s], %[t1], %[t2], %[s]\n" \
    ".Lc8%=a0:\n" \
    "str %[s], [%[y]], #4\n" \
    "subs %[n], %[n], #1\n" \
    "bne .Lc8%=l\n" \
            : [w] "+r"(w), [col] "+r"(col), [cnt] "+r"(count), [y] "+r"(y), \
              [n] "+r"(n), [s] "=&r"(s_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), \
              [c] "=&r"(c_) \
            : [x] "r"(x) \
            : "memory", "cc")
#endif

EP_FAST_FN void ep_rows_csr8(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const int8_t *w = k->w;
    const uint8_t *count = (const uint8_t *)k->cnt;
    const uint8_t *col = (const uint8_t *)k->col;
#ifdef EP_CSR8_ROWS
    if (n != 0u) {
        int32_t s_, t1_, t2_;
        uint32_t c_;
        EP_CSR8_ROWS();
    }
#else
    unsigned r;
    for (r = 0; r < n; r++) {
        y[r] = ep_dot_csr8(&w, &col, x, count[r]);
    }
    count += n;
#endif
    k->cnt = count;
    k->col = col;
    k->w = w;
}


EP_FAST_FN void ep_rows_csr16(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const int8_t *w = k->w;
    unsigned r, c;
    const uint16_t *count = (const uint16_t *)k->cnt;
    const uint16_t *col = (const uint16_t *)k->col;
    for (r = 0; r < n; r++) {
        int32_t sum = 0;
        for (c = count[r]; c > 0u; c--) {
            sum += (int32_t)*w++ * x[*col++];
        }
        y[r] = sum;
    }
    k->cnt = count + n;
    k->col = col;
    k->w = w;
}

#endif /* !EP_KERNELS_SMALL */
