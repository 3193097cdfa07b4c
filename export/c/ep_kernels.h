/*
 * ep_kernels.h -- edgeprune's integer-only sparse kernels (portable C99, no heap, no float).
 *
 * The generated model files (<name>_model.h/.c, written by export.cmodel) hold the
 * constant data and call these kernels. Every buffer is owned by the caller.
 *
 * Number formats (all fixed point; "Qn" = value * 2^n stored in an integer):
 *   weights        int8, symmetric, one scale per matrix (folded into requantisers)
 *   vectors        int16 (normalised input x, low-rank intermediates a and v, state h)
 *   accumulators   int32; the generator checks that no row can overflow
 *                  (sum |w| * 32768 < 2^31 for every row)
 *   pre-activation int32 Q(pre_frac), clamped to [-2^24, 2^24 - 1] after the two paths
 *                  are added
 *   gate z, cand c Q15 in int32: z in [0, 32768], c in [-32768, 32768]
 *   state h        int16 Q(h_frac), saturated to [-h_max - 1, h_max]
 *
 * Saturation: every narrowing (requantised int32, int16 vectors, state, scores) clamps
 * to the target range instead of wrapping. Rounding is "half up" (add half, then an
 * arithmetic shift right). The code assumes that >> on a negative signed integer is an
 * arithmetic shift (true for GCC, Clang, armcc/armclang and IAR); it never left-shifts a
 * negative value (it multiplies instead), so it is free of undefined behaviour.
 * That holds for constants in the ranges given in this file, plus bias shifts 0 .. 23,
 * h_max 0 .. 32767 and zeta/nu 0 .. 32768 (Q15); export.cmodel.generate_c refuses
 * anything else. Checked by tests/test_fuzz_cmodel.py: ASan/UBSan builds, extreme
 * inputs and weights, bit-exact with the numpy reference.
 *
 * Speed: on cores with the DSP extension (__ARM_FEATURE_DSP, e.g. Cortex-M4/M7/M33) dense
 * rows, the table interpolation and the saturations use SMLAD/SXTB16/SSAT/USAT; the
 * portable C computes the same values. The default fixed point (pre_frac 12, the built-in
 * table, sigmoid/tanh, 16-bit state, W/U requantiser shifts >= 33) has a fast state update
 * (with GCC/Clang on Thumb-2 DSP cores one asm loop per block of rows; the same values).
 *
 * Sparse matrix M (rows = outputs, cols = inputs; y[r] = sum_c M[r][c] * x[c]), stored as
 *   EP_FMT_DENSE    values[rows*cols] row-major, index unused; in each row, every full group
 *                   of 4 columns is stored in the order (0, 2, 1, 3) (SMLAD pairs), the
 *                   last cols % 4 in order
 *   EP_FMT_CSR8     index = uint8  {count[rows], col[nnz]}   (cols <= 256, counts <= 255)
 *   EP_FMT_CSR16    index = uint16 {count[rows], col[nnz]}
 *   EP_FMT_CSR8N    index = uint8  {count nibbles[ceil(rows/2)] (low nibble first), col[nnz]}
 *                   (cols <= 256, counts <= 15)
 *   EP_FMT_ROWMASK  index = uint8 mask[rows], bit c = column c of the row is nonzero
 *                   (cols <= 8)
 *   EP_FMT_BITMASK  index = uint8 mask[ceil(rows*cols/8)], bit k (LSB first) = element k
 *                   of the row-major matrix is nonzero; values in row-major order
 *   EP_FMT_RLE4     index = 4-bit codes, two per byte (low nibble first), over the
 *                   row-major matrix: code n < 15 skips n zeros then takes one value,
 *                   code 15 skips 15 zeros and takes none
 * values holds the nonzeros in row-major order; values/index may be NULL when nnz == 0.
 */
#ifndef EP_KERNELS_H
#define EP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Build choice. The default build is the fast kernels (ep_kernels_fast_*.c: Cortex-M
 * DSP/Thumb-2 paths, portable C elsewhere). Defining EP_KERNELS_SMALL builds the portable
 * reference instead (ep_kernels_ref.c: plain loops, the smallest code), and EP_FORMATS
 * (a mask of 1u << EP_FMT_*) limits it to the storage formats a model uses. Both builds
 * compute the same values bit for bit. export.cmodel writes these two macros into
 * ep_kernels_config.h beside a `--kernels small` model; it is picked up here when the
 * compiler finds it on the include path.
 */
#if defined(__has_include)
#if __has_include("ep_kernels_config.h")
#include "ep_kernels_config.h"
#endif
#endif
#ifndef EP_FORMATS
#define EP_FORMATS 0x7Fu
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    EP_FMT_DENSE = 0,
    EP_FMT_CSR8 = 1,
    EP_FMT_CSR16 = 2,
    EP_FMT_BITMASK = 3,
    EP_FMT_RLE4 = 4,
    EP_FMT_CSR8N = 5,
    EP_FMT_ROWMASK = 6,
    EP_FMT_NONE = 255 /* matrix absent (the second factor of a full-rank path) */
};

enum {
    EP_NL_SIGMOID = 0,    /* the table over [-8, 8] (stored half over [0, 8], mirrored as
                             32768 - y) linearly interpolated at clamp(x, -8, 8 - 2^-pre_frac),
                             rounding half up */
    EP_NL_TANH = 1,       /* 2 sigmoid(2 clamp(x, -4, 4)) - 1, same table */
    EP_NL_QUANT_SIGM = 2, /* clip((x + 1) / 2, 0, 1), exact */
    EP_NL_QUANT_TANH = 3  /* clip(x, -1, 1), exact */
};

/**
 * lut_off of a model whose table is the standard lut_shift 1 one (export.cmodel.sigmoid_lut(1)):
 * the kernels' built-in copy is used (and the default fixed point gets a fast path).
 */
#define EP_LUT_BUILTIN 0xFFFFu

/** Clamp limit of the pre-activation (Q(pre_frac) int32, to [-limit, limit - 1]). */
#define EP_PRE_LIMIT ((int32_t)1 << 24)

/** Runtime view of an int8 matrix in one of the EP_FMT_* formats (see the top of this file). */
typedef struct {
    const int8_t *values;
    const void *index;
    uint16_t rows;
    uint16_t cols;
    uint16_t nnz;
    uint8_t format;
} ep_matrix_t;

/**
 * Compact stored descriptor of a model matrix: offsets into the model's pools (values in
 * the int8 pool; index in the uint16 pool for EP_FMT_CSR16, else in the uint8 pool).
 * Its shape follows from the model's dimensions.
 */
typedef struct {
    uint16_t values;
    uint16_t index;
    uint16_t nnz;
    uint8_t format;
    uint8_t reserved;
} ep_sparse_t;

enum { EP_RQ_A = 0, EP_RQ_W = 1, EP_RQ_V = 2, EP_RQ_U = 3 };

enum { EP_POOL_I8 = 0, EP_POOL_U8 = 1, EP_POOL_I16 = 2, EP_POOL_U16 = 3, EP_POOL_I32 = 4 };

/**
 * FastGRNN parameters (constant data, emitted by the generator). All arrays live in five
 * typed pools that follow this struct in the same object: pool[EP_POOL_*] is the byte
 * offset of each from the start of the struct (each suitably aligned); the uint16_t
 * fields named *_off are element offsets into them. The pools hold:
 *   i8   matrix values, bias_gate, bias_update      u8   8-bit matrix indices
 *   i16  in_mult, in_mean                           u16  16-bit matrix indices, sigmoid table
 *   i32  dense_bias
 */
typedef struct {
    ep_sparse_t w1;             /* W1^T (w_rank x d), or W^T (H x d) when w_rank == 0 */
    ep_sparse_t w2;             /* W2^T (H x w_rank), EP_FMT_NONE when w_rank == 0 */
    ep_sparse_t u1;             /* U1^T (u_rank x H), or U^T (H x H) when u_rank == 0 */
    ep_sparse_t u2;             /* U2^T (H x u_rank), EP_FMT_NONE when u_rank == 0 */
    ep_sparse_t dense;          /* classifier kernel^T (classes x H) */
    int32_t rq_mult[4];         /* EP_RQ_* requantisers: round(acc * mult / 2^shift), mult >= 0 */
    uint16_t pool[5];           /* EP_POOL_* byte offsets from the start of this struct */
    uint16_t zeta_q15;          /* sigmoid(zeta) in Q15 */
    uint16_t nu_q15;            /* sigmoid(nu) in Q15 */
    uint16_t in_mult_off;       /* i16[d] (0 .. 16383): x = sat16(((raw - in_mean) * in_mult */
    uint16_t in_mean_off;       /* i16[d]                     + 2^(in_shift-1)) >> in_shift) */
    uint16_t bias_gate_off;     /* i8[H], added to pre as bias * 2^bias_gate_shift */
    uint16_t bias_update_off;   /* i8[H] */
    uint16_t dense_bias_off;    /* i32[classes], in score units */
    uint16_t lut_off;           /* u16[8 * 2^lut_shift + 1]: sigmoid(i / 2^lut_shift) in Q15
                                   (each <= 32767), or EP_LUT_BUILTIN */
    uint16_t input_dim;
    uint16_t hidden;
    uint16_t w_rank;            /* 0 = full rank */
    uint16_t u_rank;            /* 0 = full rank */
    uint16_t classes;
    int16_t h_max;
    uint8_t rq_shift[4];        /* 1 .. 62 */
    uint8_t in_shift;           /* 1 .. 30 */
    uint8_t bias_gate_shift;
    uint8_t bias_update_shift;
    uint8_t pre_frac;           /* 1 .. 14 */
    uint8_t h_frac;             /* 0 .. 15 */
    uint8_t lut_shift;          /* < pre_frac */
    uint8_t gate_nl;            /* EP_NL_* */
    uint8_t update_nl;          /* EP_NL_* */
} ep_fastgrnn_t;

/** Rows per block of the FastGRNN step's matrix walks (the int32 scratch it needs). */
#define EP_ROW_BLOCK 16u

/**
 * Work bytes of one ep_fastgrnn_step: int32 tw[EP_ROW_BLOCK], tu[EP_ROW_BLOCK]; int16 x[d],
 * a[rw], v[ru] (v[h], a copy of the old state, when U is full rank).
 */
#define EP_FASTGRNN_WORK_BYTES(d, h, rw, ru) \
    (8u * EP_ROW_BLOCK + 2u * ((d) + (rw) + ((ru) > 0 ? (ru) : (h))))

/** Scratch bytes of ep_fastgrnn_predict: the work area followed by the int16 state h[H]. */
#define EP_FASTGRNN_SCRATCH_BYTES(d, h, rw, ru) (EP_FASTGRNN_WORK_BYTES(d, h, rw, ru) + 2u * (h))

/** Saturate an int32 to int16. */
int16_t ep_sat16(int32_t v);

/** round(acc * mult / 2^shift) (1 <= shift <= 62), saturated to int32. */
int32_t ep_requant(int32_t acc, int32_t mult, int shift);

/** y[r] = sum_c M[r][c] * x[c] for r < m->rows (y is overwritten). */
void ep_spmv(const ep_matrix_t *m, const int16_t *x, int32_t *y);

/** Nonlinearity `kind` (EP_NL_*) of a Q(pre_frac) value, result in Q15 (int32). */
int32_t ep_nonlinearity(int kind, int32_t pre, const ep_fastgrnn_t *p);

/**
 * One FastGRNN step: h <- step(raw, h). raw = p->input_dim int16 samples of one time step
 * (the integer input described in the model header); h = p->hidden int16 values;
 * work = EP_FASTGRNN_WORK_BYTES(...) bytes, 4-byte aligned.
 */
void ep_fastgrnn_step(const ep_fastgrnn_t *p, const int16_t *raw, int16_t *h, void *work);

/**
 * Run `steps` steps from h = 0 over window[steps * input_dim], then the classifier.
 * scratch = EP_FASTGRNN_SCRATCH_BYTES(...) bytes, 4-byte aligned. Writes
 * scores[classes] (int32 logits in score units) and returns the argmax (first on ties).
 */
int ep_fastgrnn_predict(const ep_fastgrnn_t *p, const int16_t *window, uint16_t steps,
                        void *scratch, int32_t *scores);

/* ---------------------------------------------------------------- CNN layers
 * Activations are int16 [t][c] (time-major); a layer's output is
 * y = sat16(relu?(round((acc + bias) * mult / 2^shift))) with int32 acc and bias.
 */

/**
 * Input stage: x[t][c] = sat16(((raw[t][c] - mean[c]) * mult[c] + 2^(shift-1)) >> shift)
 * for t < steps (mult 0 .. 16383, shift 1 .. 30), as in ep_fastgrnn_step.
 */
void ep_normalize_input(const int16_t *raw, uint16_t steps, uint16_t d, const int16_t *mult,
                        const int16_t *mean, int shift, int16_t *x);

/** Conv1D: y[t][co] for t < t_out over the zero-padded input (Keras 'valid' or 'same'). */
typedef struct {
    ep_matrix_t w;          /* rows = c_out, cols = kernel * c_in, col = tap * c_in + ci */
    const int32_t *bias;    /* c_out, accumulator units */
    int32_t mult;
    uint16_t t_in;
    uint16_t c_in;
    uint16_t kernel;
    uint16_t stride;
    uint16_t pad_left;      /* 0 for 'valid'; (kernel - 1) / 2 style for 'same' */
    uint16_t t_out;
    uint8_t shift;          /* 1 .. 62 */
    uint8_t relu;
} ep_conv1d_t;

/**
 * Conv1D (+ReLU) of x[t_in][c_in] into y[t_out][c_out]. patch: kernel*c_in int16,
 * acc: c_out int32 (caller-owned scratch; x, y, patch and acc must not overlap).
 */
void ep_conv1d(const ep_conv1d_t *l, const int16_t *x, int16_t *y, int16_t *patch,
               int32_t *acc);

/** MaxPooling1D ('valid'): y[t][c] = max_j x[t*stride + j][c], t < (t_in - pool) / stride + 1. */
void ep_maxpool1d(const int16_t *x, uint16_t t_in, uint16_t c, uint16_t pool, uint16_t stride,
                  int16_t *y);

/**
 * GlobalAveragePooling1D: y[c] = sat16(round(sum_t x[t][c] * mult / 2^shift)); the
 * generator folds 1/t_in (and any rescale) into mult/shift, so no division runs.
 */
void ep_gap1d(const int16_t *x, uint16_t t_in, uint16_t c, int32_t mult, int shift, int16_t *y);

/**
 * Dense (+ReLU): y[r] = sat16(relu?(rq(sum_c W[r][c] x[c] + bias[r]))) for r < w->rows;
 * acc: w->rows int32 scratch. With y == NULL the raw sums + bias stay in acc (logits).
 */
void ep_dense(const ep_matrix_t *w, const int32_t *bias, int32_t mult, int shift, int relu,
              const int16_t *x, int16_t *y, int32_t *acc);

#ifdef __cplusplus
}
#endif

#endif /* EP_KERNELS_H */
