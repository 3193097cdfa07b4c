/*
 * ep_kernels_fast.c -- the fast kernels' entry points: saturation, requantisation,
 * the row cursor's set-up (one row walk per format) and ep_spmv.
 * Part of the fast kernels (the default build; see ep_kernels.h). Bit-exact with the
 * portable reference ep_kernels_ref.c (tests/test_cmodel.py, tests/test_kernels_builds.py).
 */
#include "ep_kernels_fast.h"

#ifndef EP_KERNELS_SMALL

int16_t ep_sat16(int32_t v)
{
    return ep_sat16_i(v);
}

int32_t ep_requant(int32_t acc, int32_t mult, int shift)
{
    return ep_rq_i(acc, mult, shift);
}

/* Sets up k at the first row of m; returns the format to walk it with (EP_FMT_* or an
 * internal one). */
static unsigned ep_cursor_setup(ep_cursor_t *k, const ep_matrix_t *m)
{
    unsigned format = m->format;
    const uint8_t *idx = (const uint8_t *)m->index;
    const uint8_t *end;
    k->w = m->values;
    k->cnt = idx;
    k->col = NULL;
    k->pos = EP_NONE_LEFT;
    k->bits = 0u;
    k->base = 0u;
    k->rs = 0u;
    k->cols = m->cols;
    if (m->nnz == 0u && m->format != EP_FMT_DENSE) {
        return EP_FMT_NONE; /* every row is zero; index/values may be NULL */
    }
    switch (m->format) {
    case EP_FMT_CSR8:
        k->col = idx + m->rows;
        break;
    case EP_FMT_CSR16:
        k->col = (const uint16_t *)m->index + m->rows;
        break;
    case EP_FMT_ROWMASK:
        if (m->cols <= 5u) {
            format = EP_RM_TINY;
        }
        break;
    case EP_FMT_CSR8N: /* bits: the next count is the high nibble of *cnt */
        k->col = idx + (m->rows + 1u) / 2u;
        break;
    case EP_FMT_BITMASK:
        if (m->cols <= 24u) { /* short rows: each row's bits taken whole (bits, base = count) */
            format = m->cols <= 5u ? EP_BM_TINY : EP_BM_SHORT;
            break;
        }
        if ((m->cols & 7u) == 0u) { /* every row starts on a mask byte; nibbles from */
            format = (uint64_t)m->nnz * 20u >= (uint64_t)m->rows * m->cols * 7u /* 35% */
                         ? EP_BM_NIB
                         : EP_BM_BYTES;
            break;
        }
        end = idx + ((uint32_t)m->rows * m->cols + 7u) / 8u;
        k->col = end;
        k->base = (uint32_t)0u - 8u;
        k->pos = ep_bm_next(&k->bits, &k->base, &idx, end);
        k->cnt = idx;
        break;
    case EP_FMT_RLE4: /* the first nonzero's column; bits: its gap ended in a low nibble */
        k->col = k->w + m->nnz;
        k->pos = 0u;
        for (;;) {
            uint32_t nn = *idx & 15u;
            k->pos += nn;
            if (nn != 15u) {
                k->bits = 1u;
                break;
            }
            nn = (uint32_t)*idx++ >> 4;
            k->pos += nn;
            if (nn != 15u) {
                k->bits = 0u;
                break;
            }
        }
        k->cnt = idx;
        break;
    default:
        break;
    }
    return format;
}

/* The row walk of a cursor's format. Each format has its own function (one call per
 * block of rows, not per row), which keeps its loop's variables in registers. */
void ep_cursor_init(ep_cursor_t *k, const ep_matrix_t *m)
{
    switch (ep_cursor_setup(k, m)) {
    case EP_FMT_DENSE:
        k->rows = ep_rows_dense;
        break;
    case EP_FMT_CSR8:
        k->rows = ep_rows_csr8;
        break;
    case EP_FMT_CSR16:
        k->rows = ep_rows_csr16;
        break;
    case EP_FMT_CSR8N:
        k->rows = ep_rows_csr8n;
        break;
    case EP_FMT_BITMASK:
        k->rows = ep_rows_bitmask;
        break;
    case EP_BM_SHORT:
        k->rows = ep_rows_bm_short;
        break;
    case EP_BM_TINY:
        k->rows = ep_rows_bm_tiny;
        break;
    case EP_BM_BYTES:
        k->rows = ep_rows_bm_bytes;
        break;
    case EP_BM_NIB:
        k->rows = ep_rows_bm_nib;
        break;
    case EP_FMT_ROWMASK:
        k->rows = ep_rows_rowmask;
        break;
    case EP_RM_TINY:
        k->rows = ep_rows_rm_tiny;
        break;
    case EP_FMT_RLE4:
        k->rows = ep_rows_rle4;
        break;
    default:
        k->rows = ep_rows_zero;
        break;
    }
}

void ep_spmv(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    ep_cursor_t k;
    ep_cursor_init(&k, m);
    ep_rows(&k, m->rows, x, y);
}

#endif /* !EP_KERNELS_SMALL */
