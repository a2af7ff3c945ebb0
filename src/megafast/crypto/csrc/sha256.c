/* SHA-256 for MEGA's hashcash: SHA-256(LE32(n) || token * 262144), about 12 MiB per try.
 *
 * Every 64-byte block after the first is one of three fixed patterns (the 48-byte token
 * repeats with period 192 = 3 blocks), and the padding block does not depend on n either, so
 * their message schedules (W[t] + K[t]) are computed once per search; a try then costs only
 * the round function. The SHA-NI path runs several tries at once, because one SHA-256 chain
 * is bound by the latency of SHA256RNDS2.
 */
#include <string.h>

#include "mfcrypto.h"

#define TOKEN_LEN 48
#define REPEATS 262144
#define MSG_LEN ((uint64_t)4 + (uint64_t)TOKEN_LEN * REPEATS) /* 12582916 bytes */
#define FULL_BLOCKS (MSG_LEN / 64)                             /* 196608: block 0 + 196607 */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* wk[t] = W[t] + K[t] for one 64-byte block. */
static void schedule(const uint8_t block[64], uint32_t wk[64])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (int t = 0; t < 64; t++) wk[t] = w[t] + K256[t];
}

static void rounds_portable(uint32_t h[8], const uint32_t wk[64])
{
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + wk[t];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

#if MF_X86
#include <immintrin.h>
#define SHA __attribute__((target("sha,sse2,ssse3,sse4.1")))

/* State kept in SHA-NI order: s0 = (A,B,E,F), s1 = (C,D,G,H). */
SHA static inline void to_ni(const uint32_t h[8], __m128i *s0, __m128i *s1)
{
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);
    __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B);
    *s0 = _mm_alignr_epi8(t, u, 8);
    *s1 = _mm_blend_epi16(u, t, 0xF0);
}

SHA static inline void from_ni(__m128i s0, __m128i s1, uint32_t h[8])
{
    __m128i t = _mm_shuffle_epi32(s0, 0x1B);
    s1 = _mm_shuffle_epi32(s1, 0xB1);
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(t, s1, 0xF0));
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(s1, t, 8));
}

/* NS independent states advanced by one block each; wk[l] is lane l's schedule. */
#define SHA_LANES_FN(NS)                                                                       \
    SHA static void rounds_ni_##NS(__m128i s0[], __m128i s1[], const uint32_t *const wk[])     \
    {                                                                                          \
        __m128i a0[NS], a1[NS];                                                                \
        for (int l = 0; l < NS; l++) {                                                         \
            a0[l] = s0[l];                                                                     \
            a1[l] = s1[l];                                                                     \
        }                                                                                      \
        _Pragma("GCC unroll 16") for (int q = 0; q < 16; q++)                                  \
        {                                                                                      \
            __m128i m[NS];                                                                     \
            for (int l = 0; l < NS; l++) {                                                     \
                m[l] = _mm_loadu_si128((const __m128i *)(wk[l] + 4 * q));                      \
                s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], m[l]);                             \
            }                                                                                  \
            for (int l = 0; l < NS; l++)                                                       \
                s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], _mm_shuffle_epi32(m[l], 0x0E));    \
        }                                                                                      \
        for (int l = 0; l < NS; l++) {                                                         \
            s0[l] = _mm_add_epi32(s0[l], a0[l]);                                               \
            s1[l] = _mm_add_epi32(s1[l], a1[l]);                                               \
        }                                                                                      \
    }
SHA_LANES_FN(1)
SHA_LANES_FN(4)
#endif

int mf_sha_ni_available(void)
{
#if MF_X86
    const mf_cpu_features *f = mf_cpu();
    return f->sha_ni && f->ssse3 && f->sse41;
#else
    return 0;
#endif
}

static void compress(uint32_t h[8], const uint8_t block[64], int ni)
{
    uint32_t wk[64];
    schedule(block, wk);
#if MF_X86
    if (ni) {
        __m128i s0, s1;
        const uint32_t *w[1] = {wk};
        to_ni(h, &s0, &s1);
        rounds_ni_1(&s0, &s1, w);
        from_ni(s0, s1, h);
        return;
    }
#endif
    (void)ni;
    rounds_portable(h, wk);
}

void mf_sha256(const uint8_t *data, size_t len, uint8_t out[32], int use_sha_ni)
{
    uint32_t h[8];
    uint8_t block[64];
    memcpy(h, H0, sizeof h);
    size_t pos = 0;
    for (; pos + 64 <= len; pos += 64) compress(h, data + pos, use_sha_ni);
    size_t r = len - pos;
    memset(block, 0, 64);
    memcpy(block, data + pos, r);
    block[r] = 0x80;
    if (r >= 56) {
        compress(h, block, use_sha_ni);
        memset(block, 0, 64);
    }
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (uint8_t)(bits >> (8 * i));
    compress(h, block, use_sha_ni);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

typedef struct {
    uint32_t pattern[3][64]; /* schedules of blocks 1, 2, 3 (then repeating) */
    uint32_t last[64];       /* schedule of the padding block */
    uint8_t first[64];       /* block 0 without the 4 bytes of n */
} hashcash_plan;

static void make_plan(const uint8_t token[48], hashcash_plan *p)
{
    uint8_t block[64];
    for (int k = 1; k <= 3; k++) {
        for (int j = 0; j < 64; j++) block[j] = token[(64 * k + j - 4) % TOKEN_LEN];
        schedule(block, p->pattern[k - 1]);
    }
    memset(block, 0, 64);
    size_t tail = (size_t)(MSG_LEN - FULL_BLOCKS * 64); /* 4 bytes */
    for (size_t j = 0; j < tail; j++) block[j] = token[(FULL_BLOCKS * 64 + j - 4) % TOKEN_LEN];
    block[tail] = 0x80;
    uint64_t bits = MSG_LEN * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (uint8_t)(bits >> (8 * i));
    schedule(block, p->last);
    memset(p->first, 0, 4);
    for (int j = 4; j < 64; j++) p->first[j] = token[(j - 4) % TOKEN_LEN];
}

static void first_schedule(const hashcash_plan *p, uint32_t n, uint32_t wk[64])
{
    uint8_t block[64];
    memcpy(block, p->first, 64);
    block[0] = (uint8_t)n;
    block[1] = (uint8_t)(n >> 8);
    block[2] = (uint8_t)(n >> 16);
    block[3] = (uint8_t)(n >> 24);
    schedule(block, wk);
}

/* Word 0 of the final state = BE32(digest[0:4]). */
static uint32_t try_portable(const hashcash_plan *p, uint32_t n)
{
    uint32_t h[8], wk[64];
    memcpy(h, H0, sizeof h);
    first_schedule(p, n, wk);
    rounds_portable(h, wk);
    for (uint64_t k = 1; k < FULL_BLOCKS; k++) rounds_portable(h, p->pattern[(k - 1) % 3]);
    rounds_portable(h, p->last);
    return h[0];
}

#if MF_X86
#define NI_LANES 4
/* NS tries at once (NS = 1 or NI_LANES). */
#define TRY_NI_FN(NS)                                                                          \
    SHA static void try_ni_##NS(const hashcash_plan *p, const uint32_t n[], uint32_t out[])    \
    {                                                                                          \
        uint32_t wk0[NS][64], h[8];                                                            \
        __m128i s0[NS], s1[NS];                                                                \
        const uint32_t *w[NS];                                                                 \
        for (int l = 0; l < NS; l++) {                                                         \
            first_schedule(p, n[l], wk0[l]);                                                   \
            to_ni(H0, &s0[l], &s1[l]);                                                         \
            w[l] = wk0[l];                                                                     \
        }                                                                                      \
        rounds_ni_##NS(s0, s1, w);                                                             \
        for (uint64_t k = 1; k < FULL_BLOCKS; k++) {                                           \
            for (int l = 0; l < NS; l++) w[l] = p->pattern[(k - 1) % 3];                       \
            rounds_ni_##NS(s0, s1, w);                                                         \
        }                                                                                      \
        for (int l = 0; l < NS; l++) w[l] = p->last;                                           \
        rounds_ni_##NS(s0, s1, w);                                                             \
        for (int l = 0; l < NS; l++) {                                                         \
            from_ni(s0[l], s1[l], h);                                                          \
            out[l] = h[0];                                                                     \
        }                                                                                      \
    }
TRY_NI_FN(1)
TRY_NI_FN(4)
#endif

#if MF_X86
#define X512 __attribute__((target("avx512f")))
#define MB_LANES 16

/* Sixteen tries at once, one per 32-bit lane of the zmm registers (AVX-512F: rotates and
 * three-input logic in one instruction each). Blocks after the first have the same schedule
 * in every lane, so W[t] + K[t] is a broadcast operand. */
#define MB_ROUND(a, b, c, d, e, f, g, h, wk)                                                   \
    do {                                                                                       \
        __m512i s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), \
                                               _mm512_ror_epi32(e, 25), 0x96);                 \
        __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);                                 \
        __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, s1), _mm512_add_epi32(ch, wk));      \
        __m512i s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), \
                                               _mm512_ror_epi32(a, 22), 0x96);                 \
        __m512i mj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);                                 \
        d = _mm512_add_epi32(d, t1);                                                           \
        h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, mj));                                    \
    } while (0)

#define MB_8ROUNDS(W, t)                                                                       \
    MB_ROUND(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], W(t));                            \
    MB_ROUND(v[7], v[0], v[1], v[2], v[3], v[4], v[5], v[6], W(t + 1));                        \
    MB_ROUND(v[6], v[7], v[0], v[1], v[2], v[3], v[4], v[5], W(t + 2));                        \
    MB_ROUND(v[5], v[6], v[7], v[0], v[1], v[2], v[3], v[4], W(t + 3));                        \
    MB_ROUND(v[4], v[5], v[6], v[7], v[0], v[1], v[2], v[3], W(t + 4));                        \
    MB_ROUND(v[3], v[4], v[5], v[6], v[7], v[0], v[1], v[2], W(t + 5));                        \
    MB_ROUND(v[2], v[3], v[4], v[5], v[6], v[7], v[0], v[1], W(t + 6));                        \
    MB_ROUND(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[0], W(t + 7))

X512 static inline void mb_rounds_bcast(__m512i st[8], const uint32_t wk[64])
{
    __m512i v[8];
    for (int j = 0; j < 8; j++) v[j] = st[j];
#define WB(t) _mm512_set1_epi32((int)wk[t])
    for (int t = 0; t < 64; t += 8) {
        MB_8ROUNDS(WB, t);
    }
#undef WB
    for (int j = 0; j < 8; j++) st[j] = _mm512_add_epi32(st[j], v[j]);
}

X512 static inline void mb_rounds_vec(__m512i st[8], const __m512i wk[64])
{
    __m512i v[8];
    for (int j = 0; j < 8; j++) v[j] = st[j];
#define WV(t) wk[t]
    for (int t = 0; t < 64; t += 8) {
        MB_8ROUNDS(WV, t);
    }
#undef WV
    for (int j = 0; j < 8; j++) st[j] = _mm512_add_epi32(st[j], v[j]);
}

/* Block 0 of sixteen tries: word 0 is LE32(n) read big-endian, words 1..15 are shared. */
X512 static void mb_first_schedule(const hashcash_plan *p, uint32_t n0, __m512i wk[64])
{
    __m512i w[64];
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i n = _mm512_add_epi32(_mm512_set1_epi32((int)n0), lane);
    /* be32 of the little-endian bytes of n = byte swap of n */
    __m512i sw = _mm512_or_si512(
        _mm512_or_si512(_mm512_slli_epi32(n, 24), _mm512_srli_epi32(n, 24)),
        _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi32(n, 8), _mm512_set1_epi32(0x00ff0000)),
                        _mm512_and_si512(_mm512_srli_epi32(n, 8), _mm512_set1_epi32(0x0000ff00))));
    w[0] = sw;
    for (int t = 1; t < 16; t++) w[t] = _mm512_set1_epi32((int)be32(p->first + 4 * t));
    for (int t = 16; t < 64; t++) {
        __m512i x = w[t - 15], y = w[t - 2];
        __m512i s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 7), _mm512_ror_epi32(x, 18),
                                               _mm512_srli_epi32(x, 3), 0x96);
        __m512i s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(y, 17), _mm512_ror_epi32(y, 19),
                                               _mm512_srli_epi32(y, 10), 0x96);
        w[t] = _mm512_add_epi32(_mm512_add_epi32(w[t - 16], s0), _mm512_add_epi32(w[t - 7], s1));
    }
    for (int t = 0; t < 64; t++) wk[t] = _mm512_add_epi32(w[t], _mm512_set1_epi32((int)K256[t]));
}

/* Word 0 of the final states of tries n0 .. n0+15 (n wraps modulo 2**32 past the end). */
X512 static void try_mb16(const hashcash_plan *p, uint32_t n0, uint32_t out[MB_LANES])
{
    __m512i st[8], wk0[64];
    for (int j = 0; j < 8; j++) st[j] = _mm512_set1_epi32((int)H0[j]);
    mb_first_schedule(p, n0, wk0);
    mb_rounds_vec(st, wk0);
    uint64_t k = 1;
    for (; k + 3 <= FULL_BLOCKS; k += 3) {
        mb_rounds_bcast(st, p->pattern[0]);
        mb_rounds_bcast(st, p->pattern[1]);
        mb_rounds_bcast(st, p->pattern[2]);
    }
    for (; k < FULL_BLOCKS; k++) mb_rounds_bcast(st, p->pattern[(k - 1) % 3]);
    mb_rounds_bcast(st, p->last);
    _mm512_storeu_si512((void *)out, st[0]);
}

X512 static inline void mb2_rounds_bcast(__m512i st[8], __m512i su[8], const uint32_t wk[64])
{
    __m512i v[8], u[8];
    for (int j = 0; j < 8; j++) {
        v[j] = st[j];
        u[j] = su[j];
    }
#define WB(t) _mm512_set1_epi32((int)wk[t])
    for (int t = 0; t < 64; t += 8) {
        MB_ROUND(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], WB(t));
        MB_ROUND(u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], WB(t));
        MB_ROUND(v[7], v[0], v[1], v[2], v[3], v[4], v[5], v[6], WB(t + 1));
        MB_ROUND(u[7], u[0], u[1], u[2], u[3], u[4], u[5], u[6], WB(t + 1));
        MB_ROUND(v[6], v[7], v[0], v[1], v[2], v[3], v[4], v[5], WB(t + 2));
        MB_ROUND(u[6], u[7], u[0], u[1], u[2], u[3], u[4], u[5], WB(t + 2));
        MB_ROUND(v[5], v[6], v[7], v[0], v[1], v[2], v[3], v[4], WB(t + 3));
        MB_ROUND(u[5], u[6], u[7], u[0], u[1], u[2], u[3], u[4], WB(t + 3));
        MB_ROUND(v[4], v[5], v[6], v[7], v[0], v[1], v[2], v[3], WB(t + 4));
        MB_ROUND(u[4], u[5], u[6], u[7], u[0], u[1], u[2], u[3], WB(t + 4));
        MB_ROUND(v[3], v[4], v[5], v[6], v[7], v[0], v[1], v[2], WB(t + 5));
        MB_ROUND(u[3], u[4], u[5], u[6], u[7], u[0], u[1], u[2], WB(t + 5));
        MB_ROUND(v[2], v[3], v[4], v[5], v[6], v[7], v[0], v[1], WB(t + 6));
        MB_ROUND(u[2], u[3], u[4], u[5], u[6], u[7], u[0], u[1], WB(t + 6));
        MB_ROUND(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[0], WB(t + 7));
        MB_ROUND(u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[0], WB(t + 7));
    }
#undef WB
    for (int j = 0; j < 8; j++) {
        st[j] = _mm512_add_epi32(st[j], v[j]);
        su[j] = _mm512_add_epi32(su[j], u[j]);
    }
}

/* Thirty-two tries: two independent sets of sixteen, interleaved to hide latency. */
X512 static void try_mb32(const hashcash_plan *p, uint32_t n0, uint32_t out[2 * MB_LANES])
{
    __m512i st[8], su[8], wk0[64];
    for (int j = 0; j < 8; j++) st[j] = su[j] = _mm512_set1_epi32((int)H0[j]);
    mb_first_schedule(p, n0, wk0);
    mb_rounds_vec(st, wk0);
    mb_first_schedule(p, n0 + MB_LANES, wk0);
    mb_rounds_vec(su, wk0);
    for (uint64_t k = 1; k < FULL_BLOCKS; k++) mb2_rounds_bcast(st, su, p->pattern[(k - 1) % 3]);
    mb2_rounds_bcast(st, su, p->last);
    _mm512_storeu_si512((void *)out, st[0]);
    _mm512_storeu_si512((void *)(out + MB_LANES), su[0]);
}

int mf_hashcash_avx512_available(void)
{
    const mf_cpu_features *f = mf_cpu();
    return f->avx512f;
}
#else
int mf_hashcash_avx512_available(void) { return 0; }
#endif

int64_t mf_hashcash_search(const uint8_t token[48], uint32_t threshold, uint64_t start,
                           uint64_t count, int impl)
{
    hashcash_plan plan;
    make_plan(token, &plan);
    uint64_t end = start + count;
    uint64_t n = start;
#if MF_X86
    if (impl == MF_HASH_AVX512) {
        for (; n + 2 * MB_LANES <= end; n += 2 * MB_LANES) {
            uint32_t res[2 * MB_LANES];
            try_mb32(&plan, (uint32_t)n, res);
            for (int l = 0; l < 2 * MB_LANES; l++)
                if (res[l] <= threshold) return (int64_t)(n + l);
        }
        for (; n + MB_LANES <= end; n += MB_LANES) {
            uint32_t res[MB_LANES];
            try_mb16(&plan, (uint32_t)n, res);
            for (int l = 0; l < MB_LANES; l++)
                if (res[l] <= threshold) return (int64_t)(n + l);
        }
        impl = mf_sha_ni_available() ? MF_HASH_SHA_NI : MF_HASH_PORTABLE;
    }
    if (impl == MF_HASH_SHA_NI) {
        for (; n + NI_LANES <= end; n += NI_LANES) {
            uint32_t ns[NI_LANES], res[NI_LANES];
            for (int l = 0; l < NI_LANES; l++) ns[l] = (uint32_t)(n + l);
            try_ni_4(&plan, ns, res);
            for (int l = 0; l < NI_LANES; l++)
                if (res[l] <= threshold) return (int64_t)(n + l);
        }
        for (; n < end; n++) {
            uint32_t one = (uint32_t)n, res;
            try_ni_1(&plan, &one, &res);
            if (res <= threshold) return (int64_t)n;
        }
        return -1;
    }
#endif
    (void)impl;
    for (; n < end; n++)
        if (try_portable(&plan, (uint32_t)n) <= threshold) return (int64_t)n;
    return -1;
}
