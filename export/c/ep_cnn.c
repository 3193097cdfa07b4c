/*
 * ep_cnn.c -- integer CNN layers (Conv1D+ReLU, MaxPooling1D, GlobalAveragePooling1D, Dense)
 * on top of ep_spmv. Separate from the FastGRNN kernels so a FastGRNN build does not carry them.
 * See ep_kernels.h for the number formats and saturation rules.
 */
#include "ep_kernels.h"

static int32_t ep_sat64(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

void ep_normalize_input(const int16_t *raw, uint16_t steps, uint16_t d, const int16_t *mult,
                        const int16_t *mean, int shift, int16_t *x)
{
    const int32_t round = (int32_t)1 << (shift - 1);
    unsigned t, i;
    for (t = 0; t < steps; t++) {
        for (i = 0; i < d; i++) {
            x[i] = ep_sat16((((int32_t)raw[i] - mean[i]) * mult[i] + round) >> shift);
        }
        raw += d;
        x += d;
    }
}

static int16_t ep_out16(int32_t acc, int32_t mult, int shift, int relu)
{
    int32_t v = ep_requant(acc, mult, shift);
    return ep_sat16(relu && v < 0 ? 0 : v);
}

void ep_conv1d(const ep_conv1d_t *l, const int16_t *x, int16_t *y, int16_t *patch,
               int32_t *acc)
{
    const unsigned c_in = l->c_in, c_out = l->w.rows;
    unsigned t, j, i;
    for (t = 0; t < l->t_out; t++) {
        /* gather the (zero-padded) input window of output step t */
        int32_t start = (int32_t)(t * l->stride) - (int32_t)l->pad_left;
        for (j = 0; j < l->kernel; j++) {
            int32_t s = start + (int32_t)j;
            int inside = s >= 0 && s < (int32_t)l->t_in;
            for (i = 0; i < c_in; i++) {
                patch[j * c_in + i] = inside ? x[(uint32_t)s * c_in + i] : 0;
            }
        }
        ep_spmv(&l->w, patch, acc);
        for (i = 0; i < c_out; i++) {
            y[t * c_out + i] = ep_out16(ep_sat64((int64_t)acc[i] + l->bias[i]), l->mult, l->shift,
                                        l->relu);
        }
    }
}

void ep_maxpool1d(const int16_t *x, uint16_t t_in, uint16_t c, uint16_t pool, uint16_t stride,
                  int16_t *y)
{
    const unsigned t_out = t_in >= pool ? (unsigned)(t_in - pool) / stride + 1u : 0u;
    unsigned t, j, i;
    for (t = 0; t < t_out; t++) {
        for (i = 0; i < c; i++) {
            int16_t m = x[(t * stride) * c + i];
            for (j = 1; j < pool; j++) {
                int16_t v = x[(t * stride + j) * c + i];
                m = v > m ? v : m;
            }
            y[t * c + i] = m;
        }
    }
}

void ep_gap1d(const int16_t *x, uint16_t t_in, uint16_t c, int32_t mult, int shift, int16_t *y)
{
    unsigned t, i;
    for (i = 0; i < c; i++) {
        int32_t sum = 0; /* |sum| <= 65535 * 32768 < 2^31 */
        for (t = 0; t < t_in; t++) {
            sum += x[t * c + i];
        }
        y[i] = ep_sat16(ep_requant(sum, mult, shift));
    }
}

void ep_dense(const ep_matrix_t *w, const int32_t *bias, int32_t mult, int shift, int relu,
              const int16_t *x, int16_t *y, int32_t *acc)
{
    unsigned r;
    ep_spmv(w, x, acc);
    for (r = 0; r < w->rows; r++) {
        acc[r] = ep_sat64((int64_t)acc[r] + bias[r]);
        if (y != NULL) {
            y[r] = ep_out16(acc[r], mult, shift, relu);
        }
    }
}
