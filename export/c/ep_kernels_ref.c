/*
 * ep_kernels_ref.c -- the portable reference kernels: one plain loop per storage format
 * and a FastGRNN step written as its equations. Built when EP_KERNELS_SMALL is defined
 * (the `--kernels small` build, compiled at -Os); otherwise the Cortex-M fast paths
 * (ep_kernels_fast_*.c) provide the same functions, bit-exact with these.
 *
 * EP_FORMATS (a mask of 1 << EP_FMT_*, default all) names the storage formats the model
 * uses; the others' loops are compiled out. See ep_kernels.h for the number formats.
 */
#include "ep_kernels.h"

#ifdef EP_KERNELS_SMALL

static int32_t ep_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static int32_t ep_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

int16_t ep_sat16(int32_t v)
{
    return (int16_t)ep_clamp(v, INT16_MIN, INT16_MAX);
}

int32_t ep_requant(int32_t acc, int32_t mult, int shift)
{
    return ep_sat32(((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift);
}

/* ---------------------------------------------------------------- sparse matrices */

/* Is storage format f compiled in? */
#define EP_HAS(f) ((EP_FORMATS) & (1u << (f)))

/*
 * A walk over a matrix a block of rows at a time: row = the next row, value = the
 * nonzeros taken so far; rle4 also keeps its next code (code, counting nibbles) and the
 * flat index of its next nonzero (next).
 */
typedef struct {
    const ep_matrix_t *m;
    uint32_t row;
    uint32_t value;
    uint32_t code;
    uint32_t next;
} ep_walk_t;

/* rle4: the flat index of the next nonzero, `from` = the flat index after the last one. */
static uint32_t ep_rle4_next(ep_walk_t *k, uint32_t from)
{
    const uint8_t *codes = (const uint8_t *)k->m->index;
    uint32_t n;
    do {
        n = (codes[k->code / 2u] >> (4u * (k->code & 1u))) & 15u;
        k->code++;
        from += n;
    } while (n == 15u);
    return from;
}

static void ep_walk_init(ep_walk_t *k, const ep_matrix_t *m)
{
    k->m = m;
    k->row = 0u;
    k->value = 0u;
    k->code = 0u;
    k->next = 0u;
    if (EP_HAS(EP_FMT_RLE4) && m->format == EP_FMT_RLE4 && m->nnz > 0u) {
        k->next = ep_rle4_next(k, 0u);
    }
}

/* y[i] = row (k->row + i) of the matrix times x, for i < n; the walk moves past them. */
static void ep_walk_rows(ep_walk_t *k, unsigned n, const int16_t *x, int32_t *y)
{
    const ep_matrix_t *m = k->m;
    const unsigned cols = m->cols, fmt = m->nnz == 0u && m->format != EP_FMT_DENSE
                                              ? EP_FMT_NONE /* all zero: index may be NULL */
                                              : m->format;
    const uint8_t *idx8 = (const uint8_t *)m->index;
    const uint16_t *idx16 = (const uint16_t *)m->index;
    const int8_t *w = m->values;
    const uint32_t r0 = k->row;
    uint32_t j = k->value, r;
    unsigned c;

    for (r = 0; r < n; r++) {
        y[r] = 0;
    }
    if (EP_HAS(EP_FMT_DENSE) && fmt == EP_FMT_DENSE) {
        /* row-major; each full group of 4 columns is stored in the order (0, 2, 1, 3) */
        for (r = r0; r < r0 + n; r++) {
            const int8_t *v = w + r * cols;
            for (c = 0; c + 4u <= cols; c += 4u, v += 4) {
                y[r - r0] += (int32_t)v[0] * x[c] + (int32_t)v[2] * x[c + 1] +
                             (int32_t)v[1] * x[c + 2] + (int32_t)v[3] * x[c + 3];
            }
            for (; c < cols; c++) {
                y[r - r0] += (int32_t)*v++ * x[c];
            }
        }
    } else if (EP_HAS(EP_FMT_CSR8) && fmt == EP_FMT_CSR8) {
        /* count[rows], then the column of each nonzero */
        for (r = r0; r < r0 + n; r++) {
            for (c = idx8[r]; c > 0u; c--, j++) {
                y[r - r0] += (int32_t)w[j] * x[idx8[m->rows + j]];
            }
        }
    } else if (EP_HAS(EP_FMT_CSR16) && fmt == EP_FMT_CSR16) {
        for (r = r0; r < r0 + n; r++) {
            for (c = idx16[r]; c > 0u; c--, j++) {
                y[r - r0] += (int32_t)w[j] * x[idx16[m->rows + j]];
            }
        }
    } else if (EP_HAS(EP_FMT_CSR8N) && fmt == EP_FMT_CSR8N) {
        /* counts as nibbles (low first), then the columns */
        const uint8_t *col = idx8 + (m->rows + 1u) / 2u;
        for (r = r0; r < r0 + n; r++) {
            for (c = (idx8[r / 2u] >> (4u * (r & 1u))) & 15u; c > 0u; c--, j++) {
                y[r - r0] += (int32_t)w[j] * x[col[j]];
            }
        }
    } else if (EP_HAS(EP_FMT_ROWMASK) && fmt == EP_FMT_ROWMASK) {
        /* one mask byte per row: bit c = column c is nonzero */
        for (r = r0; r < r0 + n; r++) {
            for (c = 0; c < cols; c++) {
                if (idx8[r] & (1u << c)) {
                    y[r - r0] += (int32_t)w[j++] * x[c];
                }
            }
        }
    } else if (EP_HAS(EP_FMT_BITMASK) && fmt == EP_FMT_BITMASK) {
        /* one bit per element of the row-major matrix */
        uint32_t bit = r0 * cols;
        for (r = r0; r < r0 + n; r++) {
            for (c = 0; c < cols; c++, bit++) {
                if (idx8[bit / 8u] & (1u << (bit & 7u))) {
                    y[r - r0] += (int32_t)w[j++] * x[c];
                }
            }
        }
    } else if (EP_HAS(EP_FMT_RLE4) && fmt == EP_FMT_RLE4) {
        /* the nonzeros in order: k->next is the flat index of the next one */
        while (j < m->nnz && k->next < (r0 + n) * cols) {
            r = k->next / cols;
            y[r - r0] += (int32_t)w[j++] * x[k->next - r * cols];
            if (j < m->nnz) {
                k->next = ep_rle4_next(k, k->next + 1u);
            }
        }
    }
    k->row = r0 + n;
    k->value = j;
}

void ep_spmv(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    ep_walk_t k;
    ep_walk_init(&k, m);
    ep_walk_rows(&k, m->rows, x, y);
}

/* ---------------------------------------------------------------- nonlinearities */

/* sigmoid(j / 2 - 8) in Q15, j = 0 .. 32: the built-in table (EP_LUT_BUILTIN). */
static const uint16_t ep_sig_table[33] = {
    11, 18, 30, 49, 81, 133, 219, 360, 589, 961, 1554,
    2486, 3906, 5978, 8813, 12371, 16384, 20397, 23955, 26790, 28862, 30282,
    31214, 31807, 32179, 32408, 32549, 32635, 32687, 32719, 32738, 32750, 32757
};

/* Pool k of a model (see ep_fastgrnn_t): the pools follow the struct in one object. */
#define EP_POOL(p, type, k) \
    ((const type *)(const void *)((const uint8_t *)(const void *)(p) + (p)->pool[k]))

/*
 * sigmoid in Q15 of a Q(pre_frac) value: the stored half of the table (over [0, 8])
 * interpolated at min(|x|, 8 - 2^-pre_frac), rounding half up; x < 0 mirrors it.
 */
static int32_t ep_sigmoid(int32_t x, const ep_fastgrnn_t *p)
{
    const uint16_t *lut = p->lut_off == EP_LUT_BUILTIN
                              ? ep_sig_table + 16
                              : EP_POOL(p, uint16_t, EP_POOL_U16) + p->lut_off;
    const unsigned sb = (unsigned)(p->pre_frac - p->lut_shift);
    const int32_t seg = (int32_t)1 << sb, last = ((int32_t)8 << p->lut_shift) - 1;
    const int neg = x < 0;
    const int32_t a = ep_clamp(neg ? -x : x, 0, ((int32_t)8 << p->pre_frac) - 1 + neg);
    const int32_t i = ep_clamp(a >> sb, 0, last);
    const int32_t f = a - (i << sb);
    const int32_t y = (int32_t)lut[i] * (seg - f) + (int32_t)lut[i + 1] * f;
    return neg ? 32768 - ((y + seg / 2 - 1) >> sb) : (y + seg / 2) >> sb;
}

int32_t ep_nonlinearity(int kind, int32_t pre, const ep_fastgrnn_t *p)
{
    const int32_t one = (int32_t)1 << p->pre_frac;
    switch (kind) {
    case EP_NL_SIGMOID:
        return ep_sigmoid(pre, p);
    case EP_NL_TANH:
        return 2 * ep_sigmoid(2 * ep_clamp(pre, -4 * one, 4 * one), p) - 32768;
    case EP_NL_QUANT_SIGM:
        return ep_clamp((ep_clamp(pre, -2 * one, 2 * one) + one) * ((int32_t)1 << (14 - p->pre_frac)),
                        0, 32768);
    case EP_NL_QUANT_TANH:
        return ep_clamp(pre, -one, one) * ((int32_t)1 << (15 - p->pre_frac));
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- FastGRNN */

/* The step's work area (EP_FASTGRNN_WORK_BYTES), by name. */
typedef struct {
    int32_t *wx; /* W x of a block of rows (EP_ROW_BLOCK) */
    int32_t *uh; /* U h of the same rows */
    int16_t *x;  /* normalised input [d] */
    int16_t *a;  /* x W1 [w_rank] */
    int16_t *v;  /* h U1 [u_rank], or a copy of h [H] when U is full rank */
} ep_work_t;

static ep_work_t ep_work(const ep_fastgrnn_t *p, void *work)
{
    ep_work_t s;
    s.wx = (int32_t *)work;
    s.uh = s.wx + EP_ROW_BLOCK;
    s.x = (int16_t *)(s.uh + EP_ROW_BLOCK);
    s.a = s.x + p->input_dim;
    s.v = s.a + p->w_rank;
    return s;
}

/* The stored matrix s (rows x cols) of model p. */
static ep_matrix_t ep_model_matrix(const ep_fastgrnn_t *p, const ep_sparse_t *s, unsigned rows,
                                   unsigned cols)
{
    ep_matrix_t m;
    m.values = EP_POOL(p, int8_t, EP_POOL_I8) + s->values;
    m.index = s->format == EP_FMT_CSR16
                  ? (const void *)(EP_POOL(p, uint16_t, EP_POOL_U16) + s->index)
                  : (const void *)(EP_POOL(p, uint8_t, EP_POOL_U8) + s->index);
    m.rows = (uint16_t)rows;
    m.cols = (uint16_t)cols;
    m.nnz = s->nnz;
    m.format = s->format;
    return m;
}

/* out = sat16(requant(M x)) for the low-rank intermediates a = x W1 and v = h U1. */
static void ep_low_rank(const ep_matrix_t *m, const int16_t *x, int rq, const ep_fastgrnn_t *p,
                        int32_t *acc, int16_t *out)
{
    ep_walk_t k;
    unsigned r0, n, i;
    ep_walk_init(&k, m);
    for (r0 = 0; r0 < m->rows; r0 += n) {
        n = m->rows - r0 < EP_ROW_BLOCK ? m->rows - r0 : EP_ROW_BLOCK;
        ep_walk_rows(&k, n, x, acc);
        for (i = 0; i < n; i++) {
            out[r0 + i] = ep_sat16(ep_requant(acc[i], p->rq_mult[rq], p->rq_shift[rq]));
        }
    }
}

void ep_fastgrnn_step(const ep_fastgrnn_t *p, const int16_t *raw, int16_t *h, void *work)
{
    const unsigned d = p->input_dim, H = p->hidden;
    const int16_t *mult = EP_POOL(p, int16_t, EP_POOL_I16) + p->in_mult_off;
    const int16_t *mean = EP_POOL(p, int16_t, EP_POOL_I16) + p->in_mean_off;
    const int8_t *bias_gate = EP_POOL(p, int8_t, EP_POOL_I8) + p->bias_gate_off;
    const int8_t *bias_update = EP_POOL(p, int8_t, EP_POOL_I8) + p->bias_update_off;
    const ep_work_t s = ep_work(p, work);
    ep_matrix_t mw, mu;
    ep_walk_t kw, ku;
    unsigned i, r0, n;

    /* x = (raw - mean) / std, in the input scale */
    for (i = 0; i < d; i++) {
        s.x[i] = ep_sat16((((int32_t)raw[i] - mean[i]) * mult[i] + ((int32_t)1 << (p->in_shift - 1)))
                          >> p->in_shift);
    }
    /* W x = W2 (W1 x) or W x; U h = U2 (U1 h) or U h */
    if (p->w_rank > 0u) {
        const ep_matrix_t w1 = ep_model_matrix(p, &p->w1, p->w_rank, d);
        ep_low_rank(&w1, s.x, EP_RQ_A, p, s.wx, s.a);
        mw = ep_model_matrix(p, &p->w2, H, p->w_rank);
    } else {
        mw = ep_model_matrix(p, &p->w1, H, d);
    }
    if (p->u_rank > 0u) {
        const ep_matrix_t u1 = ep_model_matrix(p, &p->u1, p->u_rank, H);
        ep_low_rank(&u1, h, EP_RQ_V, p, s.wx, s.v);
        mu = ep_model_matrix(p, &p->u2, H, p->u_rank);
    } else {
        for (i = 0; i < H; i++) {
            s.v[i] = h[i]; /* h is overwritten row by row below */
        }
        mu = ep_model_matrix(p, &p->u1, H, H);
    }
    ep_walk_init(&kw, &mw);
    ep_walk_init(&ku, &mu);
    for (r0 = 0; r0 < H; r0 += n) {
        n = H - r0 < EP_ROW_BLOCK ? H - r0 : EP_ROW_BLOCK;
        ep_walk_rows(&kw, n, p->w_rank > 0u ? s.a : s.x, s.wx);
        ep_walk_rows(&ku, n, s.v, s.uh);
        for (i = 0; i < n; i++) {
            const unsigned r = r0 + i;
            /* pre = W x + U h, clamped; z = gate(pre + b_z); c = update(pre + b_h) */
            const int64_t sum = (int64_t)ep_requant(s.wx[i], p->rq_mult[EP_RQ_W], p->rq_shift[EP_RQ_W]) +
                                ep_requant(s.uh[i], p->rq_mult[EP_RQ_U], p->rq_shift[EP_RQ_U]);
            const int32_t pre = (int32_t)(sum < -EP_PRE_LIMIT ? -EP_PRE_LIMIT
                                          : sum > EP_PRE_LIMIT - 1 ? EP_PRE_LIMIT - 1 : sum);
            const int32_t z = ep_nonlinearity(
                p->gate_nl, pre + (int32_t)bias_gate[r] * ((int32_t)1 << p->bias_gate_shift), p);
            const int32_t c = ep_nonlinearity(
                p->update_nl, pre + (int32_t)bias_update[r] * ((int32_t)1 << p->bias_update_shift), p);
            /* h = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c */
            const int32_t coef = ((p->zeta_q15 * (32768 - z) + 16384) >> 15) + p->nu_q15;
            const int32_t zh = (z * h[r] + 16384) >> 15;
            const int32_t cc = (int32_t)(((int64_t)coef * c + ((int64_t)1 << (29 - p->h_frac)))
                                         >> (30 - p->h_frac));
            h[r] = (int16_t)ep_clamp(zh + cc, -p->h_max - 1, p->h_max);
        }
    }
}

int ep_fastgrnn_predict(const ep_fastgrnn_t *p, const int16_t *window, uint16_t steps,
                        void *scratch, int32_t *scores)
{
    const unsigned work = EP_FASTGRNN_WORK_BYTES(p->input_dim, p->hidden, p->w_rank, p->u_rank);
    int16_t *h = (int16_t *)((uint8_t *)scratch + work);
    const int32_t *bias = EP_POOL(p, int32_t, EP_POOL_I32) + p->dense_bias_off;
    const ep_matrix_t dense = ep_model_matrix(p, &p->dense, p->classes, p->hidden);
    unsigned i, t;
    int best = 0;

    for (i = 0; i < p->hidden; i++) {
        h[i] = 0;
    }
    for (t = 0; t < steps; t++) {
        ep_fastgrnn_step(p, window + (uint32_t)t * p->input_dim, h, scratch);
    }
    ep_spmv(&dense, h, scores);
    for (i = 0; i < p->classes; i++) {
        scores[i] = ep_sat32((int64_t)scores[i] + bias[i]);
        if (scores[i] > scores[best]) {
            best = (int)i;
        }
    }
    return best;
}

#endif /* EP_KERNELS_SMALL */
