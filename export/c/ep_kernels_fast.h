/*
 * ep_kernels_fast.h -- internal to the fast kernels (ep_kernels_fast_*.c): the feature
 * tests, the saturating helpers and the row cursor their files share. Not a public API.
 */
#ifndef EP_KERNELS_FAST_H
#define EP_KERNELS_FAST_H

#include "ep_kernels.h"

#include <string.h>

/*
 * Cortex-M4/M7/M33 DSP extension: dense rows take four int8 x int16 products per two
 * SMLAD. The int32 sum is the same as the portable loop's (the generator guarantees that
 * no partial sum of a row can overflow), so both paths are bit-exact.
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(__ARM_BIG_ENDIAN) && \
    !defined(EP_NO_DSP)
#include <arm_acle.h>
#define EP_USE_DSP 1
#else
#define EP_USE_DSP 0
#endif
/* SSAT (ARMv6 and ARMv7-M, the Cortex-M3 included): the saturations of the fast paths */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && !defined(EP_NO_DSP)
#if !EP_USE_DSP
#include <arm_acle.h>
#endif
#define EP_USE_SAT 1
#else
#define EP_USE_SAT 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EP_INLINE static inline __attribute__((always_inline))
#define EP_NOINLINE static __attribute__((noinline))
#define EP_CTZ(v) ((unsigned)__builtin_ctz(v))
#define EP_UNREACHABLE __builtin_unreachable()
/* hides a value from the optimiser (keeps a constant in a register) */
#define EP_OPAQUE(v) __asm__("" : "+r"(v))
#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define EP_FALLTHROUGH __attribute__((fallthrough))
#endif
#endif
#ifndef EP_FALLTHROUGH
#define EP_FALLTHROUGH ((void)0)
#endif
#else
#define EP_INLINE static inline
#define EP_NOINLINE static
#define EP_FALLTHROUGH ((void)0)
#define EP_UNREACHABLE ((void)0)
#define EP_OPAQUE(v) ((void)0)
/* trailing zeros of a nonzero value */
static unsigned EP_CTZ(uint32_t v)
{
    unsigned n = 0;
    while (!(v & 1u)) {
        v >>= 1;
        n++;
    }
    return n;
}
#endif

EP_INLINE int32_t ep_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

EP_INLINE int32_t ep_sat64(int64_t v)
{
    if (v > INT32_MAX) {
        return INT32_MAX;
    }
    if (v < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)v;
}

EP_INLINE int16_t ep_sat16_i(int32_t v)
{
    return (int16_t)ep_clamp32(v, INT16_MIN, INT16_MAX);
}

/*
 * round(acc * mult / 2^shift). For shift >= 33 only the high word of the product is
 * needed: with P = hi * 2^32 + lo (0 <= lo < 2^32), floor((P + 2^(shift-1)) / 2^shift)
 * = (hi + 2^(shift-33)) >> (shift-32) exactly, and |result| <= 2^30 never saturates.
 */
EP_INLINE int32_t ep_rq_i(int32_t acc, int32_t mult, int shift)
{
    if (shift >= 33) {
        int32_t hi = (int32_t)(((int64_t)acc * mult) >> 32);
        return (hi + ((int32_t)1 << (shift - 33))) >> (shift - 32);
    } else {
        int64_t p = (int64_t)acc * mult + ((int64_t)1 << (shift - 1));
        return ep_sat64(p >> shift);
    }
}


/*
 * Row cursor over a matrix: ep_rows() computes the dot products of the next n rows and
 * leaves the cursor on the row after them, so a caller can walk a matrix in blocks of
 * rows (the FastGRNN step does, to keep its scratch small). Fields by format:
 *   dense          w
 *   csr8, csr16    w, cnt (counts of the next rows), col (their columns)
 *   csr8n          as csr8; bits = 1: the next row's count is the high nibble of *cnt
 *   rowmask        w, cnt (mask bytes of the next rows)
 *   bitmask        w, pos (flat index of the next nonzero, EP_NONE_LEFT when none is
 *                  left), bits (set bits of the current mask byte not yet taken; bit j
 *                  is flat index base + j), cnt (next mask byte), col (one past the last)
 *   rle4           w, col (one past the last value), pos (column of the next nonzero
 *                  relative to the next row), cnt (code byte of the gap after it), bits
 *                  (1: that gap starts in the high nibble)
 * rs = flat index of the next row's first element (bitmask).
 */
typedef struct ep_cursor ep_cursor_t;
typedef void (*ep_rows_fn)(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
struct ep_cursor {
    /* the format's row walk (set by ep_cursor_init: one indirect call per block) */
    ep_rows_fn rows;
    /* the fields up to base are all that the row walks other than the general bitmask's
     * and rle4's read (bits = base = 0 at the first row): see ep_ktpl_t */
    const int8_t *w;
    const void *cnt;
    const void *col;
    unsigned cols;
    uint32_t bits;
    uint32_t base;
    uint32_t pos;
    uint32_t rs;
};

#define EP_NONE_LEFT UINT32_MAX

/* Pool k of a model (see ep_fastgrnn_t): the pools follow the struct in one object. */
#define EP_POOL(p, type, k) \
    ((const type *)(const void *)((const uint8_t *)(const void *)(p) + (p)->pool[k]))
#define EP_BM_SHORT 0x83u /* internal: bitmask with cols <= 24 */
#define EP_BM_TINY 0x84u  /* internal: bitmask with cols <= 5 */
#define EP_BM_BYTES 0x85u /* internal: bitmask with cols > 24, a multiple of 8 */
#define EP_RM_TINY 0x86u  /* internal: rowmask with cols <= 5 */
#define EP_BM_NIB 0x87u   /* internal: bitmask as EP_BM_BYTES, >= 35% nonzero */

/* bitmask: the next set bit at or after the current byte's remaining bits. */
EP_INLINE uint32_t ep_bm_next(uint32_t *bits, uint32_t *base, const uint8_t **q,
                              const uint8_t *end)
{
    uint32_t b = *bits;
    while (b == 0u) {
        if (*q == end) {
            return EP_NONE_LEFT;
        }
        b = *(*q)++;
        *base += 8u;
    }
    *bits = b;
    return *base + EP_CTZ(b);
}

/* A row walk shared between the fast kernels' files (called through ep_cursor_t.rows). */
#if defined(__GNUC__) || defined(__clang__)
#define EP_FAST_FN __attribute__((noinline))
#else
#define EP_FAST_FN
#endif

/* The row walks, one per format (ep_kernels_fast_csr.c, ep_kernels_fast_mask.c). */
void ep_rows_dense(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_csr8(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_csr16(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_csr8n(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_bitmask(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_bm_short(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_bm_tiny(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_bm_bytes(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_bm_nib(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_rowmask(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_rm_tiny(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_rle4(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);
void ep_rows_zero(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y);

/* Sets up k at the first row of m and picks its row walk (ep_kernels_fast.c). */
void ep_cursor_init(ep_cursor_t *k, const ep_matrix_t *m);

/* y[i] = dot(row i of the cursor's next n rows, x); the cursor moves past them. */
EP_INLINE void ep_rows(ep_cursor_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    k->rows(k, n, x, y);
}

/* sum_j w[j] * x[col[j]] over the next cnt nonzeros of a csr8 row; moves w and col. */
EP_INLINE int32_t ep_dot_csr8(const int8_t **wp, const uint8_t **cp, const int16_t *x,
                              unsigned cnt)
{
    const int8_t *w = *wp;
    const uint8_t *col = *cp;
    int32_t sum = 0;
    if (cnt != 0u) {
        do {
            sum += (int32_t)*w++ * x[*col++];
        } while (--cnt != 0u);
    }
    *wp = w;
    *cp = col;
    return sum;
}

#if EP_USE_DSP && (defined(__GNUC__) || defined(__clang__))
/*
 * The first low-rank products (a = W1 x, v = U1 h) in csr8n or csr8 with their
 * requantisation in the same pass (ep_kernels_fast_csr_rq.c; shift >= 33 only).
 */
typedef void (*ep_rows_rq_fn)(ep_cursor_t *k, unsigned n, const int16_t *x, int16_t *y,
                              int32_t mult, int shift);
#define EP_ROWS_RQ 1
void ep_rows_csr8n_rq(ep_cursor_t *k, unsigned n, const int16_t *x, int16_t *y, int32_t mult,
                      int shift);
void ep_rows_csr8_rq(ep_cursor_t *k, unsigned n, const int16_t *x, int16_t *y, int32_t mult,
                     int shift);
#endif

#endif /* EP_KERNELS_FAST_H */
