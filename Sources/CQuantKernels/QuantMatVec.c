// Matrix-vector kernels over ggml block formats, read in place. Block layouts follow ggml-common.h (as the Swift
// dequantizers in Sources/Checkpoints/GGUF do); each kernel sums row · x per block in float32, 8 lanes wide.
#include "CQuantKernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CQ_X86 1
#include <immintrin.h>
#else
#define CQ_X86 0
#endif

enum {
    CQ_F16 = 1, CQ_Q4_0 = 2, CQ_Q4_1 = 3, CQ_Q5_0 = 6, CQ_Q5_1 = 7, CQ_Q8_0 = 8,
    CQ_Q4_K = 12, CQ_Q5_K = 13, CQ_Q6_K = 14, CQ_BF16 = 30,
};

#if CQ_X86

#define CQ_KERNEL __attribute__((target("avx2,fma,f16c")))

static int cq_detected = -1;

int cq_cpu_has_kernels(void) {
    if (cq_detected < 0) {
        __builtin_cpu_init();
        cq_detected = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cq_detected;
}

static inline CQ_KERNEL float cq_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline CQ_KERNEL float cq_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// The low 8 bytes of v (signed) as 8 floats.
static inline CQ_KERNEL __m256 cq_s8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

// Σ q·x over 16 signed bytes and 16 floats.
static inline CQ_KERNEL __m256 cq_dot16s(__m128i q, const float *x, __m256 acc) {
    acc = _mm256_fmadd_ps(cq_s8(q), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(cq_s8(_mm_srli_si128(q, 8)), _mm256_loadu_ps(x + 8), acc);
}

// Σ q·x over 32 bytes (two 16-byte halves) and 32 floats, in two independent chains (FMA latency, not throughput,
// bounds a single chain). The bytes are read as signed: unsigned quants (at most 5 bits) are below 128 and read alike.
static inline CQ_KERNEL __m256 cq_dot32s(__m128i a, __m128i b, const float *x) {
    __m256 p0 = _mm256_mul_ps(cq_s8(a), _mm256_loadu_ps(x));
    __m256 p1 = _mm256_mul_ps(cq_s8(_mm_srli_si128(a, 8)), _mm256_loadu_ps(x + 8));
    p0 = _mm256_fmadd_ps(cq_s8(b), _mm256_loadu_ps(x + 16), p0);
    p1 = _mm256_fmadd_ps(cq_s8(_mm_srli_si128(b, 8)), _mm256_loadu_ps(x + 24), p1);
    return _mm256_add_ps(p0, p1);
}

// Σ x over 32 floats, 8 lanes.
static inline CQ_KERNEL __m256 cq_sum32(const float *x) {
    __m256 a = _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8));
    __m256 b = _mm256_add_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24));
    return _mm256_add_ps(a, b);
}

// Bits `first` ..< `first` + 16 of `bits` as 16 bytes, each 0x10 where its bit is set (Q5's fifth bit).
static inline CQ_KERNEL __m128i cq_fifth_bits(uint32_t bits, int first) {
    const __m128i spread = first == 0 ? _mm_set_epi8(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                                      : _mm_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m128i select = _mm_set_epi8((char)0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01,
                                        (char)0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01);
    __m128i v = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)bits), spread);
    v = _mm_cmpeq_epi8(_mm_and_si128(v, select), select);
    return _mm_and_si128(v, _mm_set1_epi8(0x10));
}

static CQ_KERNEL float cq_dot_q8_0(const uint8_t *p, const float *x, int64_t blocks) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= blocks; b += 2, p += 68, x += 64) {
        __m256 s0 = cq_dot32s(_mm_loadu_si128((const __m128i *)(p + 2)), _mm_loadu_si128((const __m128i *)(p + 18)), x);
        __m256 s1 = cq_dot32s(_mm_loadu_si128((const __m128i *)(p + 36)), _mm_loadu_si128((const __m128i *)(p + 52)), x + 32);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p)), s0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p + 34)), s1, acc1);
    }
    for (; b < blocks; b++, p += 34, x += 32) {
        __m256 s0 = cq_dot32s(_mm_loadu_si128((const __m128i *)(p + 2)), _mm_loadu_si128((const __m128i *)(p + 18)), x);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p)), s0, acc0);
    }
    return cq_hsum(_mm256_add_ps(acc0, acc1));
}

// The 32 quants of a Q4_x/Q5_x block: low nibbles (elements 0..15) in *lo, high nibbles (16..31) in *hi, with Q5's
// fifth bits (bit j of the 32-bit word at `bits` for element j) added as 0x10.
static inline CQ_KERNEL void cq_nibbles(const uint8_t *quants, const uint8_t *bits, __m128i *lo, __m128i *hi) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m128i q = _mm_loadu_si128((const __m128i *)quants);
    *lo = _mm_and_si128(q, low);
    *hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
    if (bits) {
        uint32_t qh;
        memcpy(&qh, bits, 4);
        *lo = _mm_or_si128(*lo, cq_fifth_bits(qh, 0));
        *hi = _mm_or_si128(*hi, cq_fifth_bits(qh, 16));
    }
}

// Q4_0 (18 bytes: d, 16 quant bytes) and Q5_0 (22 bytes: d, 32 fifth bits, 16 quant bytes): x = d·(q − centre),
// centre 8 or 16. Element j < 16 is the low nibble of quant byte j, element j + 16 its high nibble; Q5_0's fifth
// bit of element j is bit j of the 32-bit word.
static CQ_KERNEL float cq_dot_q45_0(const uint8_t *p, const float *x, int64_t blocks, int fifth) {
    const __m128i centre = _mm_set1_epi8(fifth ? 16 : 8);
    const size_t stride = fifth ? 22 : 18;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++, p += stride, x += 32) {
        __m128i lo, hi;
        cq_nibbles(p + (fifth ? 6 : 2), fifth ? p + 2 : NULL, &lo, &hi);
        __m256 s = cq_dot32s(_mm_sub_epi8(lo, centre), _mm_sub_epi8(hi, centre), x);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p)), s, acc);
    }
    return cq_hsum(acc);
}

// Q4_1 (20 bytes: d, m, 16 quant bytes) and Q5_1 (24 bytes: d, m, 32 fifth bits, 16 quant bytes): x = d·q + m,
// so Σ = d·Σq·x + m·Σx.
static CQ_KERNEL float cq_dot_q45_1(const uint8_t *p, const float *x, int64_t blocks, int fifth) {
    const size_t stride = fifth ? 24 : 20;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++, p += stride, x += 32) {
        __m128i lo, hi;
        cq_nibbles(p + (fifth ? 8 : 4), fifth ? p + 4 : NULL, &lo, &hi);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p)), cq_dot32s(lo, hi, x), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(cq_half(p + 2)), cq_sum32(x), accm);
    }
    return cq_hsum(_mm256_add_ps(acc, accm));
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4).
static inline void cq_scale_min_k4(int j, const uint8_t *q, float *scale, float *min) {
    if (j < 4) {
        *scale = (float)(q[j] & 63);
        *min = (float)(q[j + 4] & 63);
    } else {
        *scale = (float)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *min = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Σ over 32 unsigned quant bytes (a 256-bit register) times 32 floats.
static inline CQ_KERNEL __m256 cq_dot32u(__m256i q, const float *x) {
    return cq_dot32s(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1), x);
}

// Q4_K (144 bytes) and Q5_K (176 bytes): sub-block s of 32 has x = d·scale_s·q − dmin·min_s, so
// Σ = d·scale_s·Σq·x − dmin·min_s·Σx. Chunk c (64 elements) takes low nibbles for sub-block 2c, high for 2c+1;
// Q5_K's fifth bits are bits 2c and 2c+1 of qh[l].
static CQ_KERNEL float cq_dot_qk45(const uint8_t *p, const float *x, int64_t blocks, int fifth) {
    const __m256i low = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const size_t stride = fifth ? 176 : 144;
    __m256 acc = _mm256_setzero_ps(), acc2 = acc, accm = acc, accm2 = acc;
    for (int64_t b = 0; b < blocks; b++, p += stride, x += 256) {
        float d = cq_half(p), dmin = cq_half(p + 2);
        const uint8_t *scales = p + 4, *qs = p + (fifth ? 48 : 16);
        __m256i qh = fifth ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            float s1, m1, s2, m2;
            cq_scale_min_k4(2 * c, scales, &s1, &m1);
            cq_scale_min_k4(2 * c + 1, scales, &s2, &m2);
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            if (fifth) {
                __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
                __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
            }
            const float *x0 = x + 64 * c, *x1 = x0 + 32;
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * s1), cq_dot32u(lo, x0), acc);
            accm = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * m1), cq_sum32(x0), accm);
            acc2 = _mm256_fmadd_ps(_mm256_set1_ps(d * s2), cq_dot32u(hi, x1), acc2);
            accm2 = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * m2), cq_sum32(x1), accm2);
        }
    }
    return cq_hsum(_mm256_add_ps(_mm256_add_ps(acc, acc2), _mm256_add_ps(accm, accm2)));
}

// Q6_K (210 bytes): ql[128], qh[64], scales[16] (int8), d. In each 128-element half, element l + 32k (k < 4)
// is a nibble of ql[l] (k even) or ql[l + 32] (k odd) with bits 2k, 2k+1 of qh[l] on top, minus 32; its scale
// is scales[8·half + l/16 + 2k].
static CQ_KERNEL float cq_dot_q6_k(const uint8_t *p, const float *x, int64_t blocks) {
    const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < blocks; b++, p += 210, x += 256) {
        float d = cq_half(p + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = p + 64 * h;
            const int8_t *sc = (const int8_t *)(p + 192 + 8 * h);
            __m256i a = _mm256_loadu_si256((const __m256i *)ql), c = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(a, low), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top));
            q[1] = _mm256_or_si256(_mm256_and_si256(c, low), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low), _mm256_and_si256(hb, top));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), top));
            const float *xh = x + 128 * h;
            for (int k = 0; k < 4; k++) {
                __m256i v = _mm256_sub_epi8(q[k], bias);
                __m256 s0 = cq_dot16s(_mm256_castsi256_si128(v), xh + 32 * k, _mm256_setzero_ps());
                __m256 s1 = cq_dot16s(_mm256_extracti128_si256(v, 1), xh + 32 * k + 16, _mm256_setzero_ps());
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * k]), s0, acc[k]);
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * k + 1]), s1, acc[k]);
            }
        }
    }
    return cq_hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

static CQ_KERNEL float cq_dot_f16(const uint8_t *p, const float *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))), _mm256_loadu_ps(x + i), acc);
        acc2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i + 16))), _mm256_loadu_ps(x + i + 8), acc2);
    }
    for (; i + 8 <= n; i += 8) {
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))), _mm256_loadu_ps(x + i), acc);
    }
    float s = cq_hsum(_mm256_add_ps(acc, acc2));
    for (; i < n; i++) s += cq_half(p + 2 * i) * x[i];
    return s;
}

static CQ_KERNEL float cq_dot_bf16(const uint8_t *p, const float *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i))), 16);
        acc = _mm256_fmadd_ps(_mm256_castsi256_ps(w), _mm256_loadu_ps(x + i), acc);
    }
    float s = cq_hsum(acc);
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        float w;
        memcpy(&w, &bits, 4);
        s += w * x[i];
    }
    return s;
}

int cq_supports(uint32_t type) {
    if (!cq_cpu_has_kernels()) return 0;
    switch (type) {
    case CQ_F16: case CQ_BF16: case CQ_Q4_0: case CQ_Q4_1: case CQ_Q5_0: case CQ_Q5_1: case CQ_Q8_0:
    case CQ_Q4_K: case CQ_Q5_K: case CQ_Q6_K:
        return 1;
    default:
        return 0;
    }
}

static CQ_KERNEL int cq_matvec_avx2(uint32_t type, const uint8_t *w, size_t row_bytes, int64_t cols, const float *x,
                                    float *y, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        float v;
        switch (type) {
        case CQ_F16: v = cq_dot_f16(row, x, cols); break;
        case CQ_BF16: v = cq_dot_bf16(row, x, cols); break;
        case CQ_Q4_0: v = cq_dot_q45_0(row, x, cols / 32, 0); break;
        case CQ_Q4_1: v = cq_dot_q45_1(row, x, cols / 32, 0); break;
        case CQ_Q5_0: v = cq_dot_q45_0(row, x, cols / 32, 1); break;
        case CQ_Q5_1: v = cq_dot_q45_1(row, x, cols / 32, 1); break;
        case CQ_Q8_0: v = cq_dot_q8_0(row, x, cols / 32); break;
        case CQ_Q4_K: v = cq_dot_qk45(row, x, cols / 256, 0); break;
        case CQ_Q5_K: v = cq_dot_qk45(row, x, cols / 256, 1); break;
        case CQ_Q6_K: v = cq_dot_q6_k(row, x, cols / 256); break;
        default: return -1;
        }
        y[r - r0] = v;
    }
    return 0;
}

int cq_matvec(uint32_t type, const void *w, size_t row_bytes, int64_t cols, const float *x,
              float *y, int64_t r0, int64_t r1) {
    if (!cq_supports(type)) return -1;
    return cq_matvec_avx2(type, (const uint8_t *)w, row_bytes, cols, x, y, r0, r1);
}

#else

int cq_cpu_has_kernels(void) { return 0; }

int cq_supports(uint32_t type) {
    (void)type;
    return 0;
}

int cq_matvec(uint32_t type, const void *w, size_t row_bytes, int64_t cols, const float *x,
              float *y, int64_t r0, int64_t r1) {
    (void)type; (void)w; (void)row_bytes; (void)cols; (void)x; (void)y; (void)r0; (void)r1;
    return -1;
}

#endif
