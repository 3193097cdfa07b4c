/*
 * ep_kernels_fast_step.c -- the FastGRNN step and prediction: nonlinearities, the state
 * update (general, and the default fixed point's fused fast path), the step's matrix walks.
 * Part of the fast kernels (the default build; see ep_kernels.h). Bit-exact with the
 * portable reference ep_kernels_ref.c (tests/test_cmodel.py, tests/test_kernels_builds.py).
 */
#include "ep_kernels_fast.h"

#ifndef EP_KERNELS_SMALL

/*
 * The built-in table (EP_LUT_BUILTIN): sigmoid(j / 2 - 8) in Q15 for j = 0 .. 32, i.e.
 * the standard lut_shift 1 table (export.cmodel.sigmoid_lut(1)) as entries 16 .. 32,
 * mirrored (32768 - y) below. Models with that table use it instead of a copy.
 */
static const uint16_t ep_sig_table[33] = {
    11, 18, 30, 49, 81, 133, 219, 360, 589, 961, 1554,
    2486, 3906, 5978, 8813, 12371, 16384, 20397, 23955, 26790, 28862, 30282,
    31214, 31807, 32179, 32408, 32549, 32635, 32687, 32719, 32738, 32750, 32757
};

/* Per-step constants of the nonlinearities. */
typedef struct {
    const uint16_t *lut;
    int32_t lim;  /* 8 in Q(pre_frac) */
    int32_t one;  /* 1 in Q(pre_frac) */
    int32_t half; /* 2^(sb-1) */
    int32_t last; /* index of the last table segment: 8 * 2^lut_shift - 1 */
    unsigned sb;  /* pre_frac - lut_shift */
    unsigned pre_frac;
} ep_nl_t;

static void ep_nl_init(ep_nl_t *c, const ep_fastgrnn_t *p)
{
    c->lut = p->lut_off == EP_LUT_BUILTIN ? ep_sig_table + 16
                                          : EP_POOL(p, uint16_t, EP_POOL_U16) + p->lut_off;
    c->pre_frac = p->pre_frac;
    c->sb = (unsigned)(p->pre_frac - p->lut_shift);
    c->lim = (int32_t)8 << p->pre_frac;
    c->one = (int32_t)1 << p->pre_frac;
    c->half = (int32_t)1 << (c->sb - 1u);
    c->last = ((int32_t)8 << p->lut_shift) - 1;
}

/*
 * sigmoid in Q15 of a Q(pre_frac) value x (|x| < 2^31): the table over [-8, 8] (the
 * stored half over [0, 8], mirrored) linearly interpolated at clamp(x, -8, 8 - 2^-pre_frac)
 * with rounding half up. From the stored half: a = |x|, P = lut[i] (S - f) + lut[i+1] f
 * (S = 2^sb, a = i S + f, 0 <= f <= S); x >= 0: (P + S/2) >> sb; x < 0: 32768 -
 * ((P + S/2 - 1) >> sb), which is the mirrored table's value exactly.
 */
EP_INLINE int32_t ep_sigmoid_q15(int32_t x, const ep_nl_t *c)
{
    const int32_t neg = x < 0;
    const int32_t top = c->lim - 1 + neg;
    int32_t a = neg ? -x : x;
    int32_t i, f, pp;
    a = a < top ? a : top;
    i = a >> c->sb;
    i = i < c->last ? i : c->last;
    f = a - (i << c->sb);
    pp = (int32_t)c->lut[i] * (((int32_t)1 << c->sb) - f) + (int32_t)c->lut[i + 1] * f;
    return neg ? 32768 - ((pp + c->half - 1) >> c->sb) : (pp + c->half) >> c->sb;
}

EP_INLINE int32_t ep_nl(int kind, int32_t pre, const ep_nl_t *c)
{
    const int32_t one = c->one;
    switch (kind) {
    case EP_NL_SIGMOID:
        return ep_sigmoid_q15(pre, c);
    case EP_NL_TANH:
        return 2 * ep_sigmoid_q15(2 * ep_clamp32(pre, -4 * one, 4 * one), c) - 32768;
    case EP_NL_QUANT_SIGM: {
        int32_t t = ep_clamp32(pre, -2 * one, 2 * one) + one;
        return ep_clamp32(t * ((int32_t)1 << (14u - c->pre_frac)), 0, 32768);
    }
    case EP_NL_QUANT_TANH:
        return ep_clamp32(pre, -one, one) * ((int32_t)1 << (15u - c->pre_frac));
    default:
        return 0;
    }
}

int32_t ep_nonlinearity(int kind, int32_t pre, const ep_fastgrnn_t *p)
{
    ep_nl_t c;
    ep_nl_init(&c, p);
    return ep_nl(kind, pre, &c);
}


/* The cursor over stored matrix s with the given shape. */
static void ep_cursor(ep_cursor_t *k, const ep_fastgrnn_t *p, const ep_sparse_t *s,
                      unsigned rows, unsigned cols)
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
    ep_cursor_init(k, &m);
}

/* Constants of the state update of one step. */
typedef struct {
    ep_nl_t nl;
    const int8_t *bias_gate;
    const int8_t *bias_update;
    int32_t hround; /* 2^(hshift-1) */
    int32_t zeta, nu;
    int32_t h_max;
    unsigned hshift; /* 30 - h_frac - 1 (c is even: the product is halved first) */
    unsigned bg_shift, bu_shift;
    int fast; /* both requantised paths are below 2^30: their sum fits int32 */
} ep_upd_t;

/* sigmoid (tanh == 0) or tanh/2 (tanh/2 = sigmoid(2x) - 1/2, always an integer) in Q15. */
EP_INLINE int32_t ep_sig_or_half_tanh(int32_t pre, const ep_nl_t *c, int tanh)
{
    if (tanh) {
        return ep_sigmoid_q15(2 * ep_clamp32(pre, -4 * c->one, 4 * c->one), c) - 16384;
    }
    return ep_sigmoid_q15(pre, c);
}

/*
 * pre = clamp(rw + ru) (both already requantised); gates; h = z h + (sigmoid(zeta) (1 - z)
 * + sigmoid(nu)) c for n rows starting at row r0. gk/uk are constants at every call site,
 * so each combination of nonlinearities gets its own loop. c is even for both update
 * nonlinearities (2 s - 32768, or a multiple of 2^(15 - pre_frac)), so coef * c is
 * computed as coef * (c / 2) in int32 (|coef * c / 2| <= 2^30) and shifted one bit less.
 */
EP_INLINE void ep_update(const ep_upd_t *u, const int32_t *tw, const int32_t *tu, int16_t *h,
                         unsigned r0, unsigned n, int gk, int uk)
{
    const int8_t *bg = u->bias_gate + r0;
    const int8_t *bu = u->bias_update + r0;
    unsigned i;
    h += r0;
    for (i = 0; i < n; i++) {
        int32_t pre, z, c2, coef, t1, t2;
        if (u->fast) {
            pre = ep_clamp32(tw[i] + tu[i], -EP_PRE_LIMIT, EP_PRE_LIMIT - 1);
        } else {
            int64_t s = (int64_t)tw[i] + tu[i];
            pre = (int32_t)(s > EP_PRE_LIMIT - 1 ? EP_PRE_LIMIT - 1
                                                 : (s < -EP_PRE_LIMIT ? -EP_PRE_LIMIT : s));
        }
        if (gk == EP_NL_SIGMOID) {
            z = ep_sig_or_half_tanh(pre + (int32_t)bg[i] * ((int32_t)1 << u->bg_shift), &u->nl, 0);
        } else {
            z = ep_nl(gk, pre + (int32_t)bg[i] * ((int32_t)1 << u->bg_shift), &u->nl);
        }
        if (uk == EP_NL_TANH) {
            c2 = ep_sig_or_half_tanh(pre + (int32_t)bu[i] * ((int32_t)1 << u->bu_shift), &u->nl, 1);
        } else {
            c2 = ep_nl(uk, pre + (int32_t)bu[i] * ((int32_t)1 << u->bu_shift), &u->nl) / 2;
        }
        coef = ((u->zeta * (32768 - z) + 16384) >> 15) + u->nu;
        t1 = (z * h[i] + 16384) >> 15;
        t2 = (coef * c2 + u->hround) >> u->hshift;
        h[i] = (int16_t)ep_clamp32(t1 + t2, -u->h_max - 1, u->h_max);
    }
}

/* t[i] = ep_requant(t[i], mult, shift) for i < n, the shift test hoisted. */
EP_INLINE void ep_rq_rows(int32_t *t, unsigned n, int32_t mult, int shift)
{
    unsigned i;
    if (shift >= 33) {
        const int32_t rnd = (int32_t)1 << (shift - 33);
        const unsigned sh = (unsigned)shift - 32u;
        for (i = 0; i < n; i++) {
            t[i] = ((int32_t)(((int64_t)t[i] * mult) >> 32) + rnd) >> sh;
        }
    } else {
        for (i = 0; i < n; i++) {
            t[i] = ep_rq_i(t[i], mult, shift);
        }
    }
}

/*
 * The state update's fast path, for the default fixed point (pre_frac 12, the built-in
 * table, sigmoid gate, tanh update, h_max 32767, W and U requantisers with shift >= 33,
 * bias shifts <= 16): the requantisation of both paths is fused in, every shift and clamp
 * is a constant, and the signed table (ep_sig_table, over [-8, 8]) needs no |x| and no
 * sign fix. The same values as ep_rq_rows + ep_update (tested bit-exact):
 *   - the clamp of pre to [-2^24, 2^24 - 1] is left out: each requantised path is at most
 *     2^29 + 1 in size (|acc * mult| < 2^62, shift - 32 >= 1), and a bias of at most
 *     128 * 2^16 = 2^23 cannot bring a pre beyond the clamp back into the table's range
 *     ([-8, 8) for the gate, [-4, 4) for the update), so both indices are the same;
 *   - the gate's table argument is g = clamp(x, -8, 8 - 2^-12) (Q12, SSAT 16), in segment
 *     i = g >> 11 (-16 .. 15); the interpolation y0 (2048 - f) + y1 f + 1024 over it
 *     (g + 8 = 2048 (i + 16) + f) is dy g + C[i] with dy = y1 - y0 and
 *     C[i] = (y0 - dy (i + 16)) 2048 + 1024 + 32768 dy (ep_fast_lin, rows 0 .. 31).
 * With GCC/Clang on Thumb-2 DSP cores one asm loop does a whole block (ep_fast_block);
 * elsewhere three C passes over the block (few live constants each, so no spills).
 */
#define EP_FAST_PRE_FRAC 12u

/*
 * Rows 0 .. 31, segment i - 16 of the sigmoid: {dy, C[i]} (see above). Rows 32 .. 63,
 * segment i - 48 of sigmoid(2 v) - 1/2 at w = clamp(v, -4, 4 - 2^-12) (Q12, SSAT 15),
 * segment w >> 10: {2 dy, C - 2^25 - 2^25 + 16384 * 2 dy} of the sigmoid row (the table
 * index 2 (v + 8) - 8 clamped to [0, 2^16 - 1] is 2 (w + 4) except at the top, where
 * both interpolate to 32757).
 */
static const int32_t ep_fast_lin[64][2] = {
    {7, 252928}, {12, 406528}, {19, 607232}, {32, 953344}, {52, 1444864}, {86, 2210816},
    {141, 3337216}, {229, 4959232}, {372, 7302144}, {593, 10470400}, {932, 14636032},
    {1420, 19633152}, {2072, 24974336}, {2835, 29662208}, {3558, 32623616},
    {4013, 33555456}, {4013, 33555456}, {3558, 34487296}, {2835, 37448704},
    {2072, 42136576}, {1420, 47477760}, {932, 52474880}, {593, 56640512}, {372, 59808768},
    {229, 62151680}, {141, 63773696}, {86, 64900096}, {52, 65666048}, {32, 66157568},
    {19, 66503680}, {12, 66704384}, {7, 66857984},
    {14, -33301504}, {24, -33147904}, {38, -32947200}, {64, -32601088}, {104, -32109568},
    {172, -31343616}, {282, -30217216}, {458, -28595200}, {744, -26252288},
    {1186, -23084032}, {1864, -18918400}, {2840, -13921280}, {4144, -8580096},
    {5670, -3892224}, {7116, -930816}, {8026, 1024}, {8026, 1024}, {7116, 932864},
    {5670, 3894272}, {4144, 8582144}, {2840, 13923328}, {1864, 18920448}, {1186, 23086080},
    {744, 26254336}, {458, 28597248}, {282, 30219264}, {172, 31345664}, {104, 32111616},
    {64, 32603136}, {38, 32949248}, {24, 33149952}, {14, 33303552}
};

/*
 * Constants of the fast state update, in the order the Thumb-2 loop loads them (three
 * LDM groups: pre, gates, state; the last one reloads the loop's base register).
 */
typedef struct ep_fastk_s {
    int32_t mw, rw, sw, mu, ru, su; /* W/U requantisers: multiplier, 2^(shift-33), shift-32 */
    int32_t bgm, bum;               /* 2^bias shifts */
    const int32_t *lin;             /* ep_fast_lin[16]: segment 0 of the sigmoid */
    int32_t dbu;                    /* bias_update - bias_gate (bytes) */
    int32_t zeta, kz, nu;           /* sigmoid(zeta), sigmoid(zeta) 32768 + 16384, sigmoid(nu) */
    int32_t hround, hshift;         /* 2^(hshift-1), 30 - h_frac - 1 */
    int32_t k16;                    /* 16384 */
    const int32_t *end2;            /* tw + (n & ~1) of the block being run */
    struct ep_fastk_s *self;        /* this struct */
    const int32_t *end;             /* tw + n */
} ep_fastk_t;

/*
 * Two int32 at p + k (p 4-byte aligned, k a constant 0 .. 255) in one load / store
 * (LDRD / STRD on DSP cores).
 */
#if EP_USE_DSP
#define EP_LD2(p, k, a, b) \
    __asm__("ldrd %0, %1, [%2, #%c3]" : "=r"(a), "=r"(b) \
            : "r"(p), "n"(4 * (k)), "m"(*(const int32_t(*)[2])((p) + (k))))
#define EP_ST2(p, k, a, b) \
    __asm__("strd %1, %2, [%3, #%c4]" : "=m"(*(int32_t(*)[2])((p) + (k))) \
            : "r"(a), "r"(b), "r"(p), "n"(4 * (k)))
#else
#define EP_LD2(p, k, a, b) ((a) = (p)[k], (b) = (p)[(k) + 1])
#define EP_ST2(p, k, a, b) ((p)[k] = (a), (p)[(k) + 1] = (b))
#endif
#if EP_USE_SAT
#define EP_SSAT16(v) __ssat((v), 16)
#define EP_SSAT15(v) __ssat((v), 15)
#else
#define EP_SSAT16(v) ep_clamp32((v), -32768, 32767)
#define EP_SSAT15(v) ep_clamp32((v), -16384, 16383)
#endif

/* acc + ((a * b) >> 32) (SMMLA); the caller keeps the sum within int32. */
EP_INLINE int32_t ep_smmla(int32_t a, int32_t b, int32_t acc)
{
#if EP_USE_DSP
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return acc + (int32_t)(((int64_t)a * b) >> 32);
#endif
}

#if EP_USE_DSP && defined(__thumb2__) && (defined(__GNUC__) || defined(__clang__))
#define EP_FAST_ASM 1
/*
 * One block of n >= 1 rows (k->end2 = t + (n & ~1), k->end = t + n): t = tw (tu = t +
 * EP_ROW_BLOCK). Per row, in C terms (ep_fast_pre, ep_fast_gates and ep_fast_state
 * below, fused):
 *   p  = (smmla(tw, mw, rw) >> sw) + (smmla(tu, mu, ru) >> su)        pre-activation, Q12
 *   g  = ssat16(p + bg bgm)               v = ssat15(p + bu bum)
 *   z  = (dy g + C) >> 11 (row 16 + (g >> 11))
 *   c2 = (dy v + C) >> 11 (row 48 + (v >> 10))                          c / 2
 *   h  = ssat16(((z h + 16384) >> 15) + (((((kz - zeta z) >> 15) + nu) c2 + hround) >> hshift))
 * Registers: r0 t, r1 h, r2 bg, lr k. 14 registers hold one phase's constants at a time,
 * so each phase starts with one LDM of its group (the last one also reloads lr = k->self).
 * Rows go two at a time (one LDM and two LDRD for both pres), an odd last row alone.
 */
/* EP_GATES(p): r8 = z, r7 = c2 from p; r3 bgm, r4 bum, r5 lin, r6 dbu; r11, r12 scratch */
#define EP_GATES(p) \
    "ldrsb r7, [r2, r6]\n"          /* bu[i] */ \
    "ldrsb r8, [r2], #1\n"          /* bg[i] */ \
    "mla r7, r7, r4, " p "\n" \
    "mla r8, r8, r3, " p "\n" \
    "ssat r7, #15, r7\n"            /* v */ \
    "ssat r8, #16, r8\n"            /* g */ \
    "asr r11, r8, #11\n" \
    "add r11, r5, r11, lsl #3\n" \
    "ldrd r11, r12, [r11]\n"        /* dy, C */ \
    "mla r8, r11, r8, r12\n" \
    "asr r8, r8, #11\n"             /* z */ \
    "asr r11, r7, #10\n" \
    "add r11, r5, r11, lsl #3\n" \
    "ldrd r11, r12, [r11, #256]\n"  /* dy, C (rows 32 .. 63) */ \
    "mla r7, r11, r7, r12\n" \
    "asr r7, r7, #11\n"             /* c2 */
/* EP_STATE(tmp): *h++ from z (r8), c2 (r7); r3 zeta, r4 kz, r5 nu, r6 hround, r9 hshift,
   r11 k16 */
#define EP_STATE(tmp) \
    "mls r4, r8, r3, r4\n"          /* kz - zeta z */ \
    "add r4, r5, r4, asr #15\n"     /* coef */ \
    "ldrsh " tmp ", [r1]\n" \
    "mla " tmp ", r8, " tmp ", r11\n" /* z h + 16384 */ \
    "mla r4, r4, r7, r6\n"          /* coef c2 + hround */ \
    "asr r4, r4, r9\n" \
    "add r4, r4, " tmp ", asr #15\n" \
    "ssat r4, #16, r4\n" \
    "strh r4, [r1], #2\n"
#define EP_ARG __attribute__((unused)) /* read from r0 .. r3 */
__attribute__((naked, noinline)) static void ep_fast_block(EP_ARG int32_t *t, EP_ARG int16_t *h,
                                                           EP_ARG const int8_t *bg,
                                                           EP_ARG ep_fastk_t *k)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "mov lr, r3\n"
        "ldr r12, [lr, #64]\n"          /* end2 */
        "cmp r0, r12\n"
        "beq 2f\n"
        "1:\n"
        "ldmia lr!, {r3-r8}\n"          /* mw rw sw mu ru su */
        "ldrd r9, r10, [r0], #8\n"      /* tw[i], tw[i + 1] */
        "ldrd r11, r12, [r0, #56]\n"    /* tu[i], tu[i + 1] */
        "smmla r9, r9, r3, r4\n"
        "smmla r10, r10, r3, r4\n"
        "smmla r11, r11, r6, r7\n"
        "smmla r12, r12, r6, r7\n"
        "asr r9, r9, r5\n"
        "asr r10, r10, r5\n"
        "asr r11, r11, r8\n"
        "asr r12, r12, r8\n"
        "add r9, r9, r11\n"             /* p of row i */
        "add r10, r10, r12\n"           /* p of row i + 1 */
        "ldmia lr!, {r3-r6}\n"          /* bgm bum lin dbu */
        EP_GATES("r9")
        "ldmia lr, {r3-r6, r9, r11}\n"  /* zeta kz nu hround hshift k16 */
        EP_STATE("r12")
        "ldmdb lr, {r3-r6}\n"           /* bgm bum lin dbu */
        EP_GATES("r10")
        "ldmia lr, {r3-r6, r9, r11, r12, lr}\n" /* zeta kz nu hround hshift k16 end2 self */
        EP_STATE("r10")
        "cmp r0, r12\n"
        "bne 1b\n"
        "2:\n"
        "ldr r12, [lr, #72]\n"          /* end */
        "cmp r0, r12\n"
        "beq 3f\n"
        "ldmia lr!, {r3-r8}\n"          /* the odd last row: mw rw sw mu ru su */
        "ldr r9, [r0], #4\n"            /* tw[i] */
        "ldr r10, [r0, #60]\n"          /* tu[i] */
        "smmla r9, r9, r3, r4\n"
        "smmla r10, r10, r6, r7\n"
        "asr r9, r9, r5\n"
        "asr r10, r10, r8\n"
        "add r9, r9, r10\n"             /* p */
        "ldmia lr!, {r3-r6}\n"          /* bgm bum lin dbu */
        EP_GATES("r9")
        "ldmia lr, {r3-r6, r9, r11}\n"  /* zeta kz nu hround hshift k16 */
        EP_STATE("r10")
        "3:\n"
        "pop {r4-r11, pc}\n");
}
#undef EP_GATES
#undef EP_STATE
#else
/* ep_fast_lin row 16 + (g >> 11) (row 48 + (g >> 10) for the update) at g: lin = row 16
   or 48, seg = g >> 11 or g >> 10 (-16 .. 15). */
EP_INLINE int32_t ep_lin_fast(int32_t g, const int32_t (*lin)[2], int32_t seg)
{
    const int32_t *e = lin[seg];
    int32_t dy, c;
    EP_LD2(e, 0, dy, c);
    return (dy * g + c) >> 11;
}

/*
 * t holds tw[EP_ROW_BLOCK] then tu[EP_ROW_BLOCK] (the step's work area).
 * 1: pre = rq(tw) + rq(tu) (Q12) -> tw, two rows at a time.
 */
#define EP_FAST_PRE(w, u) ((ep_smmla(w, mw, rw) >> sw) + (ep_smmla(u, mu, ru) >> su))
EP_NOINLINE void ep_fast_pre(int32_t *t, unsigned n, const ep_fastk_t *k)
{
    const int32_t mw = k->mw, mu = k->mu, rw = k->rw, ru = k->ru;
    const unsigned sw = (unsigned)k->sw, su = (unsigned)k->su;
    unsigned pairs = n >> 1;
    if (pairs != 0u) {
        do {
            int32_t w0, w1, u0, u1;
            EP_LD2(t, 0, w0, w1);
            EP_LD2(t, EP_ROW_BLOCK, u0, u1);
            w0 = EP_FAST_PRE(w0, u0);
            w1 = EP_FAST_PRE(w1, u1);
            EP_ST2(t, 0, w0, w1);
            t += 2;
        } while (--pairs != 0u);
    }
    if (n & 1u) {
        t[0] = EP_FAST_PRE(t[0], t[EP_ROW_BLOCK]);
    }
}

/* 2: z = sigmoid(g) -> tw, c / 2 = sigmoid(2 v) - 1/2 -> tu (g, v = pre + biases). */
EP_NOINLINE void ep_fast_gates(int32_t *t, unsigned n, const int8_t *bg, const ep_fastk_t *k)
{
    const int32_t bgm = k->bgm, bum = k->bum;
    const int8_t *bu = bg + k->dbu;
    int32_t *const tend = t + n;
    do {
        const int32_t p0 = *t;
        const int32_t g = EP_SSAT16(p0 + *bg++ * bgm), v = EP_SSAT15(p0 + *bu++ * bum);
        t[EP_ROW_BLOCK] = ep_lin_fast(v, ep_fast_lin + 48, v >> 10);
        *t++ = ep_lin_fast(g, ep_fast_lin + 16, g >> 11);
    } while (t != tend);
}

/* 3: h = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c. */
EP_NOINLINE void ep_fast_state(const int32_t *t, unsigned n, int16_t *h, const ep_fastk_t *k)
{
    const int32_t zeta = k->zeta, kz = k->kz, nu = k->nu;
    const int32_t hround = k->hround;
    const unsigned hshift = (unsigned)k->hshift;
    const int32_t *const tend = t + n;
    int32_t k16 = 16384;
    EP_OPAQUE(k16); /* in a register: one MLA for z h + 16384 */
    do {
        const int32_t z = *t++;
        *h = (int16_t)EP_SSAT16(((z * *h + k16) >> 15) +
                                (((((kz - zeta * z) >> 15) + nu) * t[EP_ROW_BLOCK - 1] + hround) >>
                                 hshift));
        h++;
    } while (t != tend);
}
#endif

EP_INLINE int16_t ep_sat16_fast(int32_t v)
{
#if EP_USE_SAT
    return (int16_t)__ssat(v, 16);
#else
    return ep_sat16_i(v);
#endif
}
/* out[i] = sat16(ep_requant(t[i], mult, shift)) for i < n, the shift test hoisted. */
EP_NOINLINE void ep_rq_sat16_rows(const int32_t *t, int16_t *out, unsigned n, int32_t mult,
                                  int shift)
{
    unsigned i;
    if (shift >= 33) { /* |high word| <= 2^30, rounding <= 2^29: no overflow */
        const int32_t rnd = (int32_t)1 << (shift - 33);
        const unsigned sh = (unsigned)shift - 32u;
        unsigned pairs = n >> 1;
        if (pairs != 0u) {
            do { /* two rows per LDRD */
                int32_t t0, t1;
                EP_LD2(t, 0, t0, t1);
                *out++ = (int16_t)EP_SSAT16(ep_smmla(t0, mult, rnd) >> sh);
                *out++ = (int16_t)EP_SSAT16(ep_smmla(t1, mult, rnd) >> sh);
                t += 2;
            } while (--pairs != 0u);
        }
        if (n & 1u) {
            *out = (int16_t)EP_SSAT16(ep_smmla(*t, mult, rnd) >> sh);
        }
    } else {
        for (i = 0; i < n; i++) {
            out[i] = ep_sat16_i(ep_rq_i(t[i], mult, shift));
        }
    }
}

/* ep_update specialised for each pair of nonlinearities (one call per block of rows). */
typedef void (*ep_update_fn)(const ep_upd_t *u, const int32_t *tw, const int32_t *tu, int16_t *h,
                             unsigned r0, unsigned n);
#define EP_UPDATE_FN(name, gk, uk)                                                      \
    EP_NOINLINE void name(const ep_upd_t *u, const int32_t *tw, const int32_t *tu,      \
                          int16_t *h, unsigned r0, unsigned n)                          \
    {                                                                                   \
        ep_update(u, tw, tu, h, r0, n, gk, uk);                                         \
    }
EP_UPDATE_FN(ep_update_sig_tanh, EP_NL_SIGMOID, EP_NL_TANH)
EP_UPDATE_FN(ep_update_sig_qtanh, EP_NL_SIGMOID, EP_NL_QUANT_TANH)
EP_UPDATE_FN(ep_update_qsig_tanh, EP_NL_QUANT_SIGM, EP_NL_TANH)
EP_UPDATE_FN(ep_update_qsig_qtanh, EP_NL_QUANT_SIGM, EP_NL_QUANT_TANH)
#undef EP_UPDATE_FN

/* A cursor's first fields at a matrix's first row, for the formats whose rows read no
 * others but cols, bits and base (0 there); rows = NULL: the general bitmask or rle4,
 * whose cursor ep_cursor sets up each step. */
typedef struct {
    ep_rows_fn rows;
    const int8_t *w;
    const void *cnt;
    const void *col;
} ep_ktpl_t;

/* The step's four matrix walks (W1 or W, W2, U1 or U, U2). */
enum { EP_KT_W1, EP_KT_W2, EP_KT_U1, EP_KT_U2, EP_KT_COUNT };

/* What a step needs besides the model: the state update's constants (ep_step_init). */
typedef struct {
    ep_ktpl_t kt[EP_KT_COUNT];
#ifdef EP_ROWS_RQ
    ep_rows_rq_fn rqw, rqu; /* a = W1 x and v = U1 h requantised in their rows, or NULL */
#endif
    ep_update_fn upd;
    int fast_path; /* the default fixed point's fast state update (see ep_fast_lin) */
    const int8_t *bias_gate;
    union {
        ep_upd_t u;    /* the general state update's constants */
        ep_fastk_t fk; /* the fast path's */
    } c;
} ep_step_t;

static void ep_ktpl_init(ep_ktpl_t *t, const ep_fastgrnn_t *p, const ep_sparse_t *m,
                         unsigned rows, unsigned cols)
{
    ep_cursor_t k;
    ep_cursor(&k, p, m, rows, cols);
    t->rows = k.rows == ep_rows_bitmask || k.rows == ep_rows_rle4 ? NULL : k.rows;
    t->w = k.w;
    t->cnt = k.cnt;
    t->col = k.col;
}

/* k at the first row of the step's matrix i (stored as m, rows x cols). */
EP_INLINE void ep_cursor_step(ep_cursor_t *k, const ep_step_t *s, unsigned i,
                              const ep_fastgrnn_t *p, const ep_sparse_t *m, unsigned rows,
                              unsigned cols)
{
    const ep_ktpl_t *const t = &s->kt[i];
    if (t->rows != NULL) {
        k->rows = t->rows;
        k->w = t->w;
        k->cnt = t->cnt;
        k->col = t->col;
        k->cols = cols;
        k->bits = 0u;
        k->base = 0u;
    } else {
        ep_cursor(k, p, m, rows, cols);
    }
}

#ifdef EP_ROWS_RQ
/* The requantising twin of a row walk, or NULL. */
static ep_rows_rq_fn ep_rows_rq_of(ep_rows_fn rows)
{
    return rows == ep_rows_csr8n ? ep_rows_csr8n_rq : rows == ep_rows_csr8 ? ep_rows_csr8_rq : NULL;
}
#endif

/* The step's cursor templates (apart from ep_step_init, whose frame is large). */
EP_NOINLINE void ep_step_cursors(ep_step_t *s, const ep_fastgrnn_t *p)
{
    /* the shape in locals: ep_cursor_init (another file) could, for all the compiler
     * knows, write *p, which would reload each field after every call */
    const unsigned rw = p->w_rank;
    unsigned H, ru;
    if (rw > 0u) {
        ep_ktpl_init(&s->kt[EP_KT_W1], p, &p->w1, rw, p->input_dim);
        ep_ktpl_init(&s->kt[EP_KT_W2], p, &p->w2, p->hidden, rw);
    } else {
        ep_ktpl_init(&s->kt[EP_KT_W1], p, &p->w1, p->hidden, p->input_dim);
    }
    H = p->hidden;
    ru = p->u_rank;
    if (ru > 0u) {
        ep_ktpl_init(&s->kt[EP_KT_U1], p, &p->u1, ru, H);
        ep_ktpl_init(&s->kt[EP_KT_U2], p, &p->u2, H, ru);
    } else {
        ep_ktpl_init(&s->kt[EP_KT_U1], p, &p->u1, H, H);
    }
#ifdef EP_ROWS_RQ
    s->rqw = rw > 0u && p->rq_shift[EP_RQ_A] >= 33 ? ep_rows_rq_of(s->kt[EP_KT_W1].rows) : NULL;
    s->rqu = ru > 0u && p->rq_shift[EP_RQ_V] >= 33 ? ep_rows_rq_of(s->kt[EP_KT_U1].rows) : NULL;
#endif
}

static void ep_step_init(ep_step_t *s, const ep_fastgrnn_t *p)
{
    ep_upd_t ul;
    ep_upd_t *const u = &ul;
    const int quant_gate = p->gate_nl == EP_NL_QUANT_SIGM;
    s->upd = p->update_nl == EP_NL_QUANT_TANH
                 ? (quant_gate ? ep_update_qsig_qtanh : ep_update_sig_qtanh)
                 : (quant_gate ? ep_update_qsig_tanh : ep_update_sig_tanh);
    ep_nl_init(&u->nl, p);
    u->bias_gate = EP_POOL(p, int8_t, EP_POOL_I8) + p->bias_gate_off;
    u->bias_update = EP_POOL(p, int8_t, EP_POOL_I8) + p->bias_update_off;
    u->fast = p->rq_shift[EP_RQ_W] >= 33 && p->rq_shift[EP_RQ_U] >= 33;
    u->hround = (int32_t)1 << (28 - p->h_frac);
    u->hshift = 29u - p->h_frac;
    u->zeta = p->zeta_q15;
    u->nu = p->nu_q15;
    u->h_max = p->h_max;
    u->bg_shift = p->bias_gate_shift;
    u->bu_shift = p->bias_update_shift;
    s->fast_path = u->fast && s->upd == ep_update_sig_tanh &&
                   p->pre_frac == EP_FAST_PRE_FRAC && p->lut_off == EP_LUT_BUILTIN &&
                   p->h_max == INT16_MAX && u->bg_shift <= 16u && u->bu_shift <= 16u;
    s->bias_gate = u->bias_gate;
    if (!s->fast_path) {
        s->c.u = ul;
    } else {
        ep_fastk_t *const k = &s->c.fk;
        k->mw = p->rq_mult[EP_RQ_W];
        k->mu = p->rq_mult[EP_RQ_U];
        k->sw = (int32_t)p->rq_shift[EP_RQ_W] - 32;
        k->su = (int32_t)p->rq_shift[EP_RQ_U] - 32;
        k->rw = (int32_t)1 << (k->sw - 1);
        k->ru = (int32_t)1 << (k->su - 1);
        k->bgm = (int32_t)1 << u->bg_shift;
        k->bum = (int32_t)1 << u->bu_shift;
        k->lin = ep_fast_lin[16];
        k->dbu = (int32_t)(u->bias_update - u->bias_gate);
        k->zeta = u->zeta;
        k->kz = u->zeta * 32768 + 16384;
        k->nu = u->nu;
        k->hround = u->hround;
        k->hshift = (int32_t)u->hshift;
        k->k16 = 16384;
        k->end2 = NULL;
        k->end = NULL;
        k->self = k;
    }
}

/* integer input normalisation of one step: x = (raw - mean) / std in the input scale */
EP_NOINLINE void ep_norm_step(const ep_fastgrnn_t *p, const int16_t *raw, int16_t *x)
{
    const int16_t *mult = EP_POOL(p, int16_t, EP_POOL_I16) + p->in_mult_off;
    const int16_t *mean = EP_POOL(p, int16_t, EP_POOL_I16) + p->in_mean_off;
    const int32_t round = (int32_t)1 << (p->in_shift - 1);
    const unsigned shift = p->in_shift;
    int16_t *const xend = x + p->input_dim;
    while (x != xend) {
        *x++ = ep_sat16_fast((((int32_t)*raw++ - *mean++) * *mult++ + round) >> shift);
    }
}

EP_NOINLINE void ep_step_run(const ep_fastgrnn_t *p, ep_step_t *s, const int16_t *raw,
                             int16_t *h, void *work)
{
    const unsigned H = p->hidden, d = p->input_dim, rw = p->w_rank, ru = p->u_rank;
    const ep_upd_t *const u = &s->c.u;
    int32_t *tw = (int32_t *)work;
    int32_t *tu = tw + EP_ROW_BLOCK;
    int16_t *x = (int16_t *)(tu + EP_ROW_BLOCK);
    int16_t *a = x + d;
    int16_t *v = a + rw;
    const int16_t *xin = rw > 0 ? a : x;
    ep_cursor_t kw, ku;
    unsigned i, r0, n;

    ep_norm_step(p, raw, x);
    /* low-rank intermediates a = x W1 and v = h U1 (or a copy of h when U is full rank) */
    if (rw > 0) {
        const int32_t mult = p->rq_mult[EP_RQ_A];
        const int shift = p->rq_shift[EP_RQ_A];
        ep_cursor_step(&kw, s, EP_KT_W1, p, &p->w1, rw, d);
#ifdef EP_ROWS_RQ
        if (s->rqw != NULL) {
            s->rqw(&kw, rw, x, a, mult, shift);
        } else
#endif
        for (r0 = 0; r0 < rw; r0 += n) {
            n = rw - r0 < 2u * EP_ROW_BLOCK ? rw - r0 : 2u * EP_ROW_BLOCK; /* tw, tu */
            ep_rows(&kw, n, x, tw);
            ep_rq_sat16_rows(tw, a + r0, n, mult, shift);
        }
        ep_cursor_step(&kw, s, EP_KT_W2, p, &p->w2, H, rw);
    } else {
        ep_cursor_step(&kw, s, EP_KT_W1, p, &p->w1, H, d);
    }
    if (ru > 0) {
        const int32_t mult = p->rq_mult[EP_RQ_V];
        const int shift = p->rq_shift[EP_RQ_V];
        ep_cursor_step(&ku, s, EP_KT_U1, p, &p->u1, ru, H);
#ifdef EP_ROWS_RQ
        if (s->rqu != NULL) {
            s->rqu(&ku, ru, h, v, mult, shift);
        } else
#endif
        for (r0 = 0; r0 < ru; r0 += n) {
            n = ru - r0 < 2u * EP_ROW_BLOCK ? ru - r0 : 2u * EP_ROW_BLOCK; /* tw, tu */
            ep_rows(&ku, n, h, tw);
            ep_rq_sat16_rows(tw, v + r0, n, mult, shift);
        }
        ep_cursor_step(&ku, s, EP_KT_U2, p, &p->u2, H, ru);
    } else {
        for (i = 0; i < H; i++) {
            v[i] = h[i];
        }
        ep_cursor_step(&ku, s, EP_KT_U1, p, &p->u1, H, H);
    }
    /* pre-activation, gates and state update, a block of rows at a time */
    if (s->fast_path) {
        for (r0 = 0; r0 < H; r0 += n) {
            n = H - r0 < EP_ROW_BLOCK ? H - r0 : EP_ROW_BLOCK;
            ep_rows(&kw, n, xin, tw);
            ep_rows(&ku, n, v, tu);
#ifdef EP_FAST_ASM
            s->c.fk.end2 = tw + (n & ~1u);
            s->c.fk.end = tw + n;
            ep_fast_block(tw, h + r0, s->bias_gate + r0, &s->c.fk);
#else
            ep_fast_pre(tw, n, &s->c.fk);
            ep_fast_gates(tw, n, s->bias_gate + r0, &s->c.fk);
            ep_fast_state(tw, n, h + r0, &s->c.fk);
#endif
        }
        return;
    }
    for (r0 = 0; r0 < H; r0 += n) {
        n = H - r0 < EP_ROW_BLOCK ? H - r0 : EP_ROW_BLOCK;
        ep_rows(&kw, n, xin, tw);
        ep_rows(&ku, n, v, tu);
        ep_rq_rows(tw, n, p->rq_mult[EP_RQ_W], p->rq_shift[EP_RQ_W]);
        ep_rq_rows(tu, n, p->rq_mult[EP_RQ_U], p->rq_shift[EP_RQ_U]);
        s->upd(u, tw, tu, h, r0, n);
    }
}

void ep_fastgrnn_step(const ep_fastgrnn_t *p, const int16_t *raw, int16_t *h, void *work)
{
    ep_step_t s;
    ep_step_init(&s, p);
    ep_step_cursors(&s, p);
    ep_step_run(p, &s, raw, h, work);
}

/* The classifier: scores = dense h + bias (its own frame, not nested with the steps'). */
EP_NOINLINE int ep_fastgrnn_classify(const ep_fastgrnn_t *p, const int16_t *h, int32_t *scores)
{
    const int32_t *dense_bias = EP_POOL(p, int32_t, EP_POOL_I32) + p->dense_bias_off;
    ep_cursor_t k;
    unsigned i;
    int best = 0;
    ep_cursor(&k, p, &p->dense, p->classes, p->hidden);
    ep_rows(&k, p->classes, h, scores);
    for (i = 0; i < p->classes; i++) {
        scores[i] = ep_sat64((int64_t)scores[i] + dense_bias[i]);
        if (scores[i] > scores[best]) {
            best = (int)i;
        }
    }
    return best;
}

int ep_fastgrnn_predict(const ep_fastgrnn_t *p, const int16_t *window, uint16_t steps,
                        void *scratch, int32_t *scores)
{
    const unsigned H = p->hidden;
    const unsigned work_bytes = EP_FASTGRNN_WORK_BYTES(p->input_dim, H, p->w_rank, p->u_rank);
    int16_t *h = (int16_t *)((uint8_t *)scratch + work_bytes);
    ep_step_t s;
    unsigned i, t;

    for (i = 0; i < H; i++) {
        h[i] = 0;
    }
    ep_step_init(&s, p); /* the step's constants and cursor templates, once */
    ep_step_cursors(&s, p);
    for (t = 0; t < steps; t++) {
        ep_step_run(p, &s, window + (uint32_t)t * p->input_dim, h, scratch);
    }
    return ep_fastgrnn_classify(p, h, scores);
}

#endif /* !EP_KERNELS_SMALL */
