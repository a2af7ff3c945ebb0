/* AES-NI and VAES kernels for x86-64, chosen at run time by CPUID.
 *
 * Every function carries its own target attribute, so the translation unit is compiled
 * without -m flags and the same build runs on any x86-64 CPU (the caller only uses these
 * kernels after mf_cpu() says the instructions exist).
 */
#include <stdlib.h>
#include <string.h>

#include "mfcrypto.h"

#if MF_X86
#include <immintrin.h>

#define NI __attribute__((target("aes,sse2,ssse3,sse4.1")))
#define ALWAYS static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- key schedule */

ALWAYS NI __m128i ni_expand_step(__m128i k, __m128i kg)
{
    kg = _mm_shuffle_epi32(kg, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, kg);
}

ALWAYS NI void ni_expand_regs(__m128i k0, __m128i rk[11])
{
    rk[0] = k0;
    rk[1] = ni_expand_step(rk[0], _mm_aeskeygenassist_si128(rk[0], 0x01));
    rk[2] = ni_expand_step(rk[1], _mm_aeskeygenassist_si128(rk[1], 0x02));
    rk[3] = ni_expand_step(rk[2], _mm_aeskeygenassist_si128(rk[2], 0x04));
    rk[4] = ni_expand_step(rk[3], _mm_aeskeygenassist_si128(rk[3], 0x08));
    rk[5] = ni_expand_step(rk[4], _mm_aeskeygenassist_si128(rk[4], 0x10));
    rk[6] = ni_expand_step(rk[5], _mm_aeskeygenassist_si128(rk[5], 0x20));
    rk[7] = ni_expand_step(rk[6], _mm_aeskeygenassist_si128(rk[6], 0x40));
    rk[8] = ni_expand_step(rk[7], _mm_aeskeygenassist_si128(rk[7], 0x80));
    rk[9] = ni_expand_step(rk[8], _mm_aeskeygenassist_si128(rk[8], 0x1b));
    rk[10] = ni_expand_step(rk[9], _mm_aeskeygenassist_si128(rk[9], 0x36));
}

NI static void ni_expand(const uint8_t key[16], mf_aes_key *out, int want_dec)
{
    __m128i rk[11];
    ni_expand_regs(_mm_loadu_si128((const __m128i *)key), rk);
    for (int r = 0; r < 11; r++) _mm_storeu_si128((__m128i *)out->enc[r], rk[r]);
    if (!want_dec) return;
    _mm_storeu_si128((__m128i *)out->dec[0], rk[10]);
    for (int r = 1; r < 10; r++) _mm_storeu_si128((__m128i *)out->dec[r], _mm_aesimc_si128(rk[10 - r]));
    _mm_storeu_si128((__m128i *)out->dec[10], rk[0]);
}

ALWAYS NI __m128i ni_enc(const __m128i rk[11], __m128i s)
{
    s = _mm_xor_si128(s, rk[0]);
#pragma GCC unroll 9
    for (int r = 1; r < 10; r++) s = _mm_aesenc_si128(s, rk[r]);
    return _mm_aesenclast_si128(s, rk[10]);
}

ALWAYS NI __m128i ni_dec(const __m128i rk[11], __m128i s)
{
    s = _mm_xor_si128(s, rk[0]);
#pragma GCC unroll 9
    for (int r = 1; r < 10; r++) s = _mm_aesdec_si128(s, rk[r]);
    return _mm_aesdeclast_si128(s, rk[10]);
}

ALWAYS NI void ni_load(const uint8_t src[11][16], __m128i rk[11])
{
#pragma GCC unroll 11
    for (int r = 0; r < 11; r++) rk[r] = _mm_loadu_si128((const __m128i *)src[r]);
}

NI static void ni_encrypt_block(const mf_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    __m128i rk[11];
    ni_load(k->enc, rk);
    _mm_storeu_si128((__m128i *)out, ni_enc(rk, _mm_loadu_si128((const __m128i *)in)));
}

NI static void ni_ecb_decrypt(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t n)
{
    __m128i rk[11];
    ni_load(k->dec, rk);
    for (size_t i = 0; i < n; i++)
        _mm_storeu_si128((__m128i *)(out + 16 * i),
                         ni_dec(rk, _mm_loadu_si128((const __m128i *)(in + 16 * i))));
}

NI static void ni_cbc_decrypt(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t n)
{
    __m128i rk[11], prev = _mm_setzero_si128();
    ni_load(k->dec, rk);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128i c0 = _mm_loadu_si128((const __m128i *)(in + 16 * i));
        __m128i c1 = _mm_loadu_si128((const __m128i *)(in + 16 * i + 16));
        __m128i c2 = _mm_loadu_si128((const __m128i *)(in + 16 * i + 32));
        __m128i c3 = _mm_loadu_si128((const __m128i *)(in + 16 * i + 48));
        __m128i p0 = _mm_xor_si128(c0, rk[0]), p1 = _mm_xor_si128(c1, rk[0]);
        __m128i p2 = _mm_xor_si128(c2, rk[0]), p3 = _mm_xor_si128(c3, rk[0]);
#pragma GCC unroll 9
        for (int r = 1; r < 10; r++) {
            p0 = _mm_aesdec_si128(p0, rk[r]);
            p1 = _mm_aesdec_si128(p1, rk[r]);
            p2 = _mm_aesdec_si128(p2, rk[r]);
            p3 = _mm_aesdec_si128(p3, rk[r]);
        }
        p0 = _mm_xor_si128(_mm_aesdeclast_si128(p0, rk[10]), prev);
        p1 = _mm_xor_si128(_mm_aesdeclast_si128(p1, rk[10]), c0);
        p2 = _mm_xor_si128(_mm_aesdeclast_si128(p2, rk[10]), c1);
        p3 = _mm_xor_si128(_mm_aesdeclast_si128(p3, rk[10]), c2);
        prev = c3;
        _mm_storeu_si128((__m128i *)(out + 16 * i), p0);
        _mm_storeu_si128((__m128i *)(out + 16 * i + 16), p1);
        _mm_storeu_si128((__m128i *)(out + 16 * i + 32), p2);
        _mm_storeu_si128((__m128i *)(out + 16 * i + 48), p3);
    }
    for (; i < n; i++) {
        __m128i c = _mm_loadu_si128((const __m128i *)(in + 16 * i));
        _mm_storeu_si128((__m128i *)(out + 16 * i), _mm_xor_si128(ni_dec(rk, c), prev));
        prev = c;
    }
}

/* Counter blocks: a register holds (nonce as loaded, block index as a native u64); the
 * shuffle turns the index into big-endian bytes 8..15. */
#define BSWAP_HI_MASK 0x08090a0b0c0d0e0fLL, 0x0706050403020100LL

ALWAYS NI __m128i ni_ctr_reg(const uint8_t nonce[8], uint64_t idx)
{
    uint64_t n64;
    memcpy(&n64, nonce, 8);
    return _mm_set_epi64x((long long)idx, (long long)n64);
}

ALWAYS NI void xor_partial(const uint8_t *src, uint8_t *dst, __m128i ks, size_t skip, size_t n)
{
    uint8_t buf[16];
    _mm_storeu_si128((__m128i *)buf, ks);
    for (size_t i = 0; i < n; i++) dst[i] = src[i] ^ buf[skip + i];
}

NI static void ni_ctr_xor(const mf_aes_key *k, const uint8_t nonce[8], uint64_t blk,
                          unsigned skip0, const uint8_t *src, uint8_t *dst, size_t len)
{
    __m128i rk[11];
    ni_load(k->enc, rk);
    const __m128i bs = _mm_set_epi64x(BSWAP_HI_MASK), one = _mm_set_epi64x(1, 0);
    __m128i c = ni_ctr_reg(nonce, blk);
    size_t skip = skip0, pos = 0;
    if (skip) {
        size_t n = 16 - skip < len ? 16 - skip : len;
        xor_partial(src, dst, ni_enc(rk, _mm_shuffle_epi8(c, bs)), skip, n);
        c = _mm_add_epi64(c, one);
        pos = n;
    }
    for (; pos + 128 <= len; pos += 128) {
        __m128i b[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            b[j] = _mm_xor_si128(_mm_shuffle_epi8(c, bs), rk[0]);
            c = _mm_add_epi64(c, one);
        }
#pragma GCC unroll 9
        for (int r = 1; r < 10; r++)
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) b[j] = _mm_aesenc_si128(b[j], rk[r]);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            b[j] = _mm_aesenclast_si128(b[j], rk[10]);
            __m128i x = _mm_loadu_si128((const __m128i *)(src + pos + 16 * j));
            _mm_storeu_si128((__m128i *)(dst + pos + 16 * j), _mm_xor_si128(x, b[j]));
        }
    }
    for (; pos + 16 <= len; pos += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(src + pos));
        _mm_storeu_si128((__m128i *)(dst + pos), _mm_xor_si128(x, ni_enc(rk, _mm_shuffle_epi8(c, bs))));
        c = _mm_add_epi64(c, one);
    }
    if (pos < len) xor_partial(src + pos, dst + pos, ni_enc(rk, _mm_shuffle_epi8(c, bs)), 0, len - pos);
}

/* NL independent chains, one block of each per step. MODE and NL are compile-time constants
 * at every call site, so the lane loops unroll and the states live in registers. */
ALWAYS NI void ni_lanes_t(const mf_aes_key *k, const uint8_t nonce[8], const int MODE,
                          const int NL, mf_lane *L, size_t n)
{
    __m128i rk[11];
    ni_load(k->enc, rk);
    const __m128i bs = _mm_set_epi64x(BSWAP_HI_MASK), one = _mm_set_epi64x(1, 0);
    __m128i m[MF_MAX_LANES], c[MF_MAX_LANES];
    const uint8_t *s[MF_MAX_LANES];
    uint8_t *d[MF_MAX_LANES];
#pragma GCC unroll 8
    for (int l = 0; l < NL; l++) {
        m[l] = _mm_loadu_si128((const __m128i *)L[l].mac);
        c[l] = ni_ctr_reg(nonce, L[l].ctr);
        s[l] = L[l].src;
        d[l] = L[l].dst;
    }
    for (size_t i = 0; i < n; i++) {
        __m128i x[MF_MAX_LANES], e[MF_MAX_LANES];
#pragma GCC unroll 8
        for (int l = 0; l < NL; l++) x[l] = _mm_loadu_si128((const __m128i *)(s[l] + 16 * i));
        if (MODE == MF_MODE_DEC) {
#pragma GCC unroll 8
            for (int l = 0; l < NL; l++) {
                e[l] = _mm_xor_si128(_mm_shuffle_epi8(c[l], bs), rk[0]);
                c[l] = _mm_add_epi64(c[l], one);
            }
#pragma GCC unroll 9
            for (int r = 1; r < 10; r++)
#pragma GCC unroll 8
                for (int l = 0; l < NL; l++) e[l] = _mm_aesenc_si128(e[l], rk[r]);
#pragma GCC unroll 8
            for (int l = 0; l < NL; l++) {
                x[l] = _mm_xor_si128(x[l], _mm_aesenclast_si128(e[l], rk[10]));
                _mm_storeu_si128((__m128i *)(d[l] + 16 * i), x[l]);
                m[l] = _mm_xor_si128(m[l], _mm_xor_si128(x[l], rk[0]));
            }
#pragma GCC unroll 9
            for (int r = 1; r < 10; r++)
#pragma GCC unroll 8
                for (int l = 0; l < NL; l++) m[l] = _mm_aesenc_si128(m[l], rk[r]);
#pragma GCC unroll 8
            for (int l = 0; l < NL; l++) m[l] = _mm_aesenclast_si128(m[l], rk[10]);
        } else {
#pragma GCC unroll 8
            for (int l = 0; l < NL; l++) {
                m[l] = _mm_xor_si128(m[l], _mm_xor_si128(x[l], rk[0]));
                if (MODE == MF_MODE_ENC) {
                    e[l] = _mm_xor_si128(_mm_shuffle_epi8(c[l], bs), rk[0]);
                    c[l] = _mm_add_epi64(c[l], one);
                }
            }
#pragma GCC unroll 9
            for (int r = 1; r < 10; r++)
#pragma GCC unroll 8
                for (int l = 0; l < NL; l++) {
                    m[l] = _mm_aesenc_si128(m[l], rk[r]);
                    if (MODE == MF_MODE_ENC) e[l] = _mm_aesenc_si128(e[l], rk[r]);
                }
#pragma GCC unroll 8
            for (int l = 0; l < NL; l++) {
                m[l] = _mm_aesenclast_si128(m[l], rk[10]);
                if (MODE == MF_MODE_ENC)
                    _mm_storeu_si128((__m128i *)(d[l] + 16 * i),
                                     _mm_xor_si128(x[l], _mm_aesenclast_si128(e[l], rk[10])));
            }
        }
    }
#pragma GCC unroll 8
    for (int l = 0; l < NL; l++) {
        _mm_storeu_si128((__m128i *)L[l].mac, m[l]);
        L[l].src += 16 * n;
        if (MODE != MF_MODE_MAC) L[l].dst += 16 * n;
        L[l].ctr += n;
    }
}

#define LANE_CASES(FN, M)                                      \
    case (M) * 8 + 1: FN(k, nonce, M, 1, L, n); break;         \
    case (M) * 8 + 2: FN(k, nonce, M, 2, L, n); break;         \
    case (M) * 8 + 3: FN(k, nonce, M, 3, L, n); break;         \
    case (M) * 8 + 4: FN(k, nonce, M, 4, L, n); break;         \
    case (M) * 8 + 5: FN(k, nonce, M, 5, L, n); break;         \
    case (M) * 8 + 6: FN(k, nonce, M, 6, L, n); break;         \
    case (M) * 8 + 7: FN(k, nonce, M, 7, L, n); break;         \
    case (M) * 8 + 8: FN(k, nonce, M, 8, L, n); break;

#define LANE_DISPATCH(FN)                                      \
    switch (mode * 8 + nl) {                                   \
        LANE_CASES(FN, MF_MODE_MAC)                            \
        LANE_CASES(FN, MF_MODE_DEC)                            \
        LANE_CASES(FN, MF_MODE_ENC)                            \
        default: break;                                        \
    }

NI static void ni_lanes(const mf_aes_key *k, const uint8_t nonce[8], int mode, int nl,
                        mf_lane *L, size_t n)
{
    LANE_DISPATCH(ni_lanes_t)
}

NI static int ni_prepare_key(const uint8_t *blocks, size_t nblocks, uint8_t pkey[16])
{
    __m128i s = _mm_loadu_si128((const __m128i *)pkey);
    if (nblocks == 1) {
        __m128i a[11];
        ni_expand_regs(_mm_loadu_si128((const __m128i *)blocks), a);
        for (int r = 0; r < 65536; r++) s = ni_enc(a, s);
    } else if (nblocks == 2) {
        __m128i a[11], b[11];
        ni_expand_regs(_mm_loadu_si128((const __m128i *)blocks), a);
        ni_expand_regs(_mm_loadu_si128((const __m128i *)(blocks + 16)), b);
        for (int r = 0; r < 65536; r++) s = ni_enc(b, ni_enc(a, s));
    } else {
        __m128i *rks = (__m128i *)malloc(sizeof(__m128i) * 11 * nblocks + 16);
        if (!rks) return -1;
        __m128i *al = (__m128i *)(((uintptr_t)rks + 15) & ~(uintptr_t)15);
        for (size_t b = 0; b < nblocks; b++)
            ni_expand_regs(_mm_loadu_si128((const __m128i *)(blocks + 16 * b)), al + 11 * b);
        for (int r = 0; r < 65536; r++)
            for (size_t b = 0; b < nblocks; b++) s = ni_enc(al + 11 * b, s);
        memset(al, 0, sizeof(__m128i) * 11 * nblocks);
        free(rks);
    }
    _mm_storeu_si128((__m128i *)pkey, s);
    return 0;
}

NI static void ni_encrypt_repeat(const mf_aes_key *k, uint8_t block[16], uint32_t rounds)
{
    __m128i rk[11];
    ni_load(k->enc, rk);
    __m128i s = _mm_loadu_si128((const __m128i *)block);
    for (uint32_t r = 0; r < rounds; r++) s = ni_enc(rk, s);
    _mm_storeu_si128((__m128i *)block, s);
}

static const mf_kernel kernel_aesni = {
    "aesni",    ni_expand, ni_encrypt_block, ni_ecb_decrypt,    ni_cbc_decrypt,
    ni_ctr_xor, ni_lanes,  ni_prepare_key,   ni_encrypt_repeat,
};

/* ---------------------------------------------------------------- VAES (two blocks per op) */

#define VA_TARGET "aes,sse2,ssse3,sse4.1,avx,avx2,vaes,avx512f,avx512vl"
#define VA_SUFFIX(name) name##_512vl
#include "vaes_impl.h"
#undef VA_TARGET
#undef VA_SUFFIX

#define VA_TARGET "aes,sse2,ssse3,sse4.1,avx,avx2,vaes"
#define VA_SUFFIX(name) name##_avx2
#include "vaes_impl.h"
#undef VA_TARGET
#undef VA_SUFFIX

static const mf_kernel kernel_vaes_512vl = {
    "vaes",           ni_expand,   ni_encrypt_block, ni_ecb_decrypt,    ni_cbc_decrypt,
    va_ctr_xor_512vl, va_lanes_512vl, ni_prepare_key, ni_encrypt_repeat,
};
static const mf_kernel kernel_vaes_avx2 = {
    "vaes",         ni_expand,   ni_encrypt_block, ni_ecb_decrypt,    ni_cbc_decrypt,
    va_ctr_xor_avx2, va_lanes_avx2, ni_prepare_key, ni_encrypt_repeat,
};


const mf_kernel *mf_x86_kernel(const char *name)
{
    const mf_cpu_features *f = mf_cpu();
    if (!f->aes || !f->ssse3 || !f->sse41) return NULL;
    if (!strcmp(name, "aesni")) return &kernel_aesni;
    if (!f->vaes || !f->avx2) return NULL;
    int has512 = f->avx512f && f->avx512vl;
    if (!strcmp(name, "vaes")) return has512 ? &kernel_vaes_512vl : &kernel_vaes_avx2;
    if (!strcmp(name, "vaes-avx512")) return has512 ? &kernel_vaes_512vl : NULL;
    if (!strcmp(name, "vaes-avx2")) return &kernel_vaes_avx2;
    return NULL;
}

#else /* no x86 path in this build */


const mf_kernel *mf_x86_kernel(const char *name)
{
    (void)name;
    return NULL;
}

#endif
