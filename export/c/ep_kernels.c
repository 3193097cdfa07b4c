/*
 * ep_kernels.c -- edgeprune's integer-only sparse kernels. See ep_kernels.h for the
 * number formats, the storage formats and the saturation rules.
 */
#include "ep_kernels.h"

static int32_t ep_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static int32_t ep_sat64(int64_t v)
{
    if (v > INT32_MAX) {
        return INT32_MAX;
    }
    if (v < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)v;
}

int16_t ep_sat16(int32_t v)
{
    return (int16_t)ep_clamp32(v, INT16_MIN, INT16_MAX);
}

int32_t ep_requant(int32_t acc, int32_t mult, int shift)
{
    int64_t p = (int64_t)acc * mult + ((int64_t)1 << (shift - 1));
    return ep_sat64(p >> shift);
}

static void ep_spmv_dense(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    const int8_t *w = m->values;
    unsigned r, c;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        for (c = 0; c < m->cols; c++) {
            sum += (int32_t)w[c] * x[c];
        }
        y[r] = sum;
        w += m->cols;
    }
}

static void ep_spmv_csr8(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    const uint8_t *count = (const uint8_t *)m->index;
    const uint8_t *col = count + m->rows;
    const int8_t *w = m->values;
    unsigned r, k;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        for (k = count[r]; k > 0; k--) {
            sum += (int32_t)*w++ * x[*col++];
        }
        y[r] = sum;
    }
}

static void ep_spmv_csr16(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    const uint16_t *count = (const uint16_t *)m->index;
    const uint16_t *col = count + m->rows;
    const int8_t *w = m->values;
    unsigned r, k;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        for (k = count[r]; k > 0; k--) {
            sum += (int32_t)*w++ * x[*col++];
        }
        y[r] = sum;
    }
}

static void ep_spmv_bitmask(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    const uint8_t *mask = (const uint8_t *)m->index;
    const int8_t *w = m->values;
    uint32_t bit = 0;
    unsigned r, c;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        for (c = 0; c < m->cols; c++, bit++) {
            if (mask[bit >> 3] & (1u << (bit & 7u))) {
                sum += (int32_t)*w++ * x[c];
            }
        }
        y[r] = sum;
    }
}

/* One RLE4 code: skip n zeros (moving to later rows as needed), then take one value. */
#define EP_RLE4_CODE(n)                                   \
    do {                                                  \
        c += (n);                                         \
        if (c >= cols) {                                  \
            y[r] = sum;                                   \
            do {                                          \
                c -= cols;                                \
                r++;                                      \
            } while (c >= cols);                          \
            sum = 0;                                      \
        }                                                 \
        if ((n) != 15u) {                                 \
            sum += (int32_t)*w++ * x[c];                  \
            c++;                                          \
        }                                                 \
    } while (0)

static void ep_spmv_rle4(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    const uint8_t *code = (const uint8_t *)m->index;
    const int8_t *w = m->values;
    const int8_t *end = w + m->nnz;
    const unsigned cols = m->cols;
    unsigned r, c = 0;
    int32_t sum = 0;
    for (r = 0; r < m->rows; r++) {
        y[r] = 0;
    }
    r = 0;
    while (w < end) {
        unsigned b = *code++;
        EP_RLE4_CODE(b & 15u);
        if (w == end) {
            break;
        }
        EP_RLE4_CODE(b >> 4);
    }
    if (m->nnz > 0) {
        y[r] = sum;
    }
}

#undef EP_RLE4_CODE

void ep_spmv(const ep_matrix_t *m, const int16_t *x, int32_t *y)
{
    switch (m->format) {
    case EP_FMT_DENSE:
        ep_spmv_dense(m, x, y);
        break;
    case EP_FMT_CSR8:
        ep_spmv_csr8(m, x, y);
        break;
    case EP_FMT_CSR16:
        ep_spmv_csr16(m, x, y);
        break;
    case EP_FMT_BITMASK:
        ep_spmv_bitmask(m, x, y);
        break;
    case EP_FMT_RLE4:
        ep_spmv_rle4(m, x, y);
        break;
    default: {
        unsigned r;
        for (r = 0; r < m->rows; r++) {
            y[r] = 0;
        }
        break;
    }
    }
}

/* sigmoid in Q15 of a Q(pre_frac) value, from the table over [0, 8]. */
static int32_t ep_sigmoid_q15(int32_t pre, const ep_fastgrnn_t *p)
{
    const int32_t lim = (int32_t)8 << p->pre_frac;
    const unsigned sb = (unsigned)(p->pre_frac - p->lut_shift);
    const uint16_t *lut = p->u16 + p->lut_off;
    int32_t a = ep_clamp32(pre, -lim, lim);
    int neg = a < 0;
    int32_t y;
    if (neg) {
        a = -a;
    }
    if (a >= lim) {
        y = lut[(8u << p->lut_shift)];
    } else {
        int32_t i = a >> sb;
        int32_t f = a & (((int32_t)1 << sb) - 1);
        int32_t y0 = lut[i];
        int32_t dy = (int32_t)lut[i + 1] - y0;
        y = y0 + ((dy * f + ((int32_t)1 << (sb - 1u))) >> sb);
    }
    return neg ? 32768 - y : y;
}

int32_t ep_nonlinearity(int kind, int32_t pre, const ep_fastgrnn_t *p)
{
    const int32_t one = (int32_t)1 << p->pre_frac;
    switch (kind) {
    case EP_NL_SIGMOID:
        return ep_sigmoid_q15(pre, p);
    case EP_NL_TANH:
        return 2 * ep_sigmoid_q15(2 * ep_clamp32(pre, -4 * one, 4 * one), p) - 32768;
    case EP_NL_QUANT_SIGM: {
        int32_t t = ep_clamp32(pre, -2 * one, 2 * one) + one;
        return ep_clamp32(t * ((int32_t)1 << (14 - p->pre_frac)), 0, 32768);
    }
    case EP_NL_QUANT_TANH:
        return ep_clamp32(pre, -one, one) * ((int32_t)1 << (15 - p->pre_frac));
    default:
        return 0;
    }
}

/* The runtime view of stored matrix s with the given shape. */
static ep_matrix_t ep_view(const ep_fastgrnn_t *p, const ep_sparse_t *s, unsigned rows,
                           unsigned cols)
{
    ep_matrix_t m;
    m.values = p->i8 + s->values;
    m.index = s->format == EP_FMT_CSR16 ? (const void *)(p->u16 + s->index)
                                        : (const void *)(p->u8 + s->index);
    m.rows = (uint16_t)rows;
    m.cols = (uint16_t)cols;
    m.nnz = s->nnz;
    m.format = s->format;
    return m;
}

static int32_t ep_rq(const ep_fastgrnn_t *p, int32_t acc, int which)
{
    return ep_requant(acc, p->rq_mult[which], p->rq_shift[which]);
}

void ep_fastgrnn_step(const ep_fastgrnn_t *p, const int16_t *raw, int16_t *h, void *work)
{
    const unsigned H = p->hidden, d = p->input_dim, rw = p->w_rank, ru = p->u_rank;
    const unsigned T = EP_MAX3_(H, rw, ru);
    const int16_t *in_mult = p->i16 + p->in_mult_off;
    const int16_t *in_mean = p->i16 + p->in_mean_off;
    const int32_t in_round = (int32_t)1 << (p->in_shift - 1);
    const int8_t *bias_gate = p->i8 + p->bias_gate_off;
    const int8_t *bias_update = p->i8 + p->bias_update_off;
    int32_t *pre = (int32_t *)work;
    int32_t *tmp = pre + H;
    int16_t *x = (int16_t *)(tmp + T);
    int16_t *a = x + d;
    int16_t *v = a + rw;
    const int32_t hround = (int32_t)1 << (29 - p->h_frac);
    ep_matrix_t m;
    unsigned i;

    /* integer input normalisation: x = (raw - mean) / std in the input scale */
    for (i = 0; i < d; i++) {
        x[i] = ep_sat16((((int32_t)raw[i] - in_mean[i]) * in_mult[i] + in_round) >> p->in_shift);
    }
    /* input path: x W (or x W1 W2) */
    if (rw > 0) {
        m = ep_view(p, &p->w1, rw, d);
        ep_spmv(&m, x, tmp);
        for (i = 0; i < rw; i++) {
            a[i] = ep_sat16(ep_rq(p, tmp[i], EP_RQ_A));
        }
        m = ep_view(p, &p->w2, H, rw);
        ep_spmv(&m, a, tmp);
    } else {
        m = ep_view(p, &p->w1, H, d);
        ep_spmv(&m, x, tmp);
    }
    for (i = 0; i < H; i++) {
        pre[i] = ep_rq(p, tmp[i], EP_RQ_W);
    }
    /* recurrent path: h U (or h U1 U2) */
    if (ru > 0) {
        m = ep_view(p, &p->u1, ru, H);
        ep_spmv(&m, h, tmp);
        for (i = 0; i < ru; i++) {
            v[i] = ep_sat16(ep_rq(p, tmp[i], EP_RQ_V));
        }
        m = ep_view(p, &p->u2, H, ru);
        ep_spmv(&m, v, tmp);
    } else {
        m = ep_view(p, &p->u1, H, H);
        ep_spmv(&m, h, tmp);
    }
    for (i = 0; i < H; i++) {
        int64_t s = (int64_t)pre[i] + ep_rq(p, tmp[i], EP_RQ_U);
        pre[i] = (int32_t)(s > EP_PRE_LIMIT ? EP_PRE_LIMIT : (s < -EP_PRE_LIMIT ? -EP_PRE_LIMIT : s));
    }
    /* gates and state update: h = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c */
    for (i = 0; i < H; i++) {
        int32_t g = pre[i] + (int32_t)bias_gate[i] * ((int32_t)1 << p->bias_gate_shift);
        int32_t u = pre[i] + (int32_t)bias_update[i] * ((int32_t)1 << p->bias_update_shift);
        int32_t z = ep_nonlinearity(p->gate_nl, g, p);
        int32_t c = ep_nonlinearity(p->update_nl, u, p);
        int32_t coef = (((int32_t)p->zeta_q15 * (32768 - z) + 16384) >> 15) + p->nu_q15;
        int32_t t1 = (z * h[i] + 16384) >> 15;
        int32_t t2 = (int32_t)(((int64_t)coef * c + hround) >> (30 - p->h_frac));
        h[i] = (int16_t)ep_clamp32(t1 + t2, -p->h_max, p->h_max);
    }
}

int ep_fastgrnn_predict(const ep_fastgrnn_t *p, const int16_t *window, uint16_t steps,
                        void *scratch, int32_t *scores)
{
    const unsigned H = p->hidden;
    const unsigned work_bytes = EP_FASTGRNN_WORK_BYTES(p->input_dim, H, p->w_rank, p->u_rank);
    const int32_t *dense_bias = p->i32 + p->dense_bias_off;
    int16_t *h = (int16_t *)((uint8_t *)scratch + work_bytes);
    ep_matrix_t m = ep_view(p, &p->dense, p->classes, H);
    unsigned i, t;
    int best = 0;

    for (i = 0; i < H; i++) {
        h[i] = 0;
    }
    for (t = 0; t < steps; t++) {
        ep_fastgrnn_step(p, window + (uint32_t)t * p->input_dim, h, scratch);
    }
    ep_spmv(&m, h, scores);
    for (i = 0; i < p->classes; i++) {
        scores[i] = ep_sat64((int64_t)scores[i] + dense_bias[i]);
        if (scores[i] > scores[best]) {
            best = (int)i;
        }
    }
    return best;
}
