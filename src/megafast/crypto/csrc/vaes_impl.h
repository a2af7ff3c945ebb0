/* VAES kernels, included by aes_x86.c once per target (VA_TARGET) with its own name suffix
 * (VA_SUFFIX). Two chains share one 256-bit register (one per 128-bit half); an odd chain
 * uses a 128-bit register. With AVX-512VL the compiler has 32 vector registers, so the 11
 * round keys and 16 states of the fused loop all stay in registers. */

#define VT __attribute__((target(VA_TARGET)))

ALWAYS VT __m256i VA_SUFFIX(load2)(const uint8_t *a, const uint8_t *b)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                   _mm_loadu_si128((const __m128i *)b), 1);
}

ALWAYS VT void VA_SUFFIX(store2)(uint8_t *a, uint8_t *b, __m256i v)
{
    _mm_storeu_si128((__m128i *)a, _mm256_castsi256_si128(v));
    _mm_storeu_si128((__m128i *)b, _mm256_extracti128_si256(v, 1));
}

VT static void VA_SUFFIX(va_ctr_xor)(const mf_aes_key *k, const uint8_t nonce[8], uint64_t blk,
                                     unsigned skip, const uint8_t *src, uint8_t *dst, size_t len)
{
    size_t pos = 0;
    if (skip) {
        size_t n = 16 - (size_t)skip;
        if (n > len) n = len;
        ni_ctr_xor(k, nonce, blk, skip, src, dst, n);
        pos = n;
        blk++;
    }
    /* from here on, pos is at the start of block blk */
    uint64_t blk0 = blk;
    size_t pos0 = pos;
    if (len - pos >= 256) {
        __m256i rk[11];
#pragma GCC unroll 11
        for (int r = 0; r < 11; r++)
            rk[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k->enc[r]));
        const __m256i bs = _mm256_set_epi64x(BSWAP_HI_MASK, BSWAP_HI_MASK);
        uint64_t n64, idx = blk0;
        memcpy(&n64, nonce, 8);
        __m256i c = _mm256_set_epi64x((long long)(idx + 1), (long long)n64, (long long)idx,
                                      (long long)n64);
        const __m256i two = _mm256_set_epi64x(2, 0, 2, 0);
        for (; pos + 256 <= len; pos += 256) {
            __m256i b[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                b[j] = _mm256_xor_si256(_mm256_shuffle_epi8(c, bs), rk[0]);
                c = _mm256_add_epi64(c, two);
            }
#pragma GCC unroll 9
            for (int r = 1; r < 10; r++)
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) b[j] = _mm256_aesenc_epi128(b[j], rk[r]);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(src + pos + 32 * j));
                _mm256_storeu_si256((__m256i *)(dst + pos + 32 * j),
                                    _mm256_xor_si256(x, _mm256_aesenclast_epi128(b[j], rk[10])));
            }
        }
    }
    if (pos < len) ni_ctr_xor(k, nonce, blk0 + (pos - pos0) / 16, 0, src + pos, dst + pos, len - pos);
}

ALWAYS VT void VA_SUFFIX(va_lanes_t)(const mf_aes_key *k, const uint8_t nonce[8], const int MODE,
                                     const int NL, mf_lane *L, size_t n)
{
    const int NP = NL / 2, ODD = NL & 1;
    __m256i rk[11];
#pragma GCC unroll 11
    for (int r = 0; r < 11; r++)
        rk[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k->enc[r]));
    const __m256i bs = _mm256_set_epi64x(BSWAP_HI_MASK, BSWAP_HI_MASK);
    const __m256i one = _mm256_set_epi64x(1, 0, 1, 0);
    uint64_t n64;
    memcpy(&n64, nonce, 8);
    __m256i m[MF_MAX_LANES / 2], c[MF_MAX_LANES / 2];
    __m128i mo = _mm_setzero_si128(), co = _mm_setzero_si128();
    const uint8_t *s[MF_MAX_LANES];
    uint8_t *d[MF_MAX_LANES];
#pragma GCC unroll 8
    for (int l = 0; l < NL; l++) {
        s[l] = L[l].src;
        d[l] = L[l].dst;
    }
#pragma GCC unroll 4
    for (int p = 0; p < NP; p++) {
        m[p] = VA_SUFFIX(load2)(L[2 * p].mac, L[2 * p + 1].mac);
        c[p] = _mm256_set_epi64x((long long)L[2 * p + 1].ctr, (long long)n64,
                                 (long long)L[2 * p].ctr, (long long)n64);
    }
    if (ODD) {
        mo = _mm_loadu_si128((const __m128i *)L[NL - 1].mac);
        co = _mm_set_epi64x((long long)L[NL - 1].ctr, (long long)n64);
    }
#define RK(r) _mm256_castsi256_si128(rk[r])
#define BS128 _mm256_castsi256_si128(bs)
#define ONE128 _mm256_castsi256_si128(one)
    for (size_t i = 0; i < n; i++) {
        const size_t o = 16 * i;
        __m256i x[MF_MAX_LANES / 2], e[MF_MAX_LANES / 2];
        __m128i xo = _mm_setzero_si128(), eo = _mm_setzero_si128();
#pragma GCC unroll 4
        for (int p = 0; p < NP; p++) x[p] = VA_SUFFIX(load2)(s[2 * p] + o, s[2 * p + 1] + o);
        if (ODD) xo = _mm_loadu_si128((const __m128i *)(s[NL - 1] + o));
        if (MODE != MF_MODE_MAC) {
#pragma GCC unroll 4
            for (int p = 0; p < NP; p++) {
                e[p] = _mm256_xor_si256(_mm256_shuffle_epi8(c[p], bs), rk[0]);
                c[p] = _mm256_add_epi64(c[p], one);
            }
            if (ODD) {
                eo = _mm_xor_si128(_mm_shuffle_epi8(co, BS128), RK(0));
                co = _mm_add_epi64(co, ONE128);
            }
        }
        if (MODE == MF_MODE_DEC) {
#pragma GCC unroll 9
            for (int r = 1; r < 10; r++) {
#pragma GCC unroll 4
                for (int p = 0; p < NP; p++) e[p] = _mm256_aesenc_epi128(e[p], rk[r]);
                if (ODD) eo = _mm_aesenc_si128(eo, RK(r));
            }
#pragma GCC unroll 4
            for (int p = 0; p < NP; p++) {
                x[p] = _mm256_xor_si256(x[p], _mm256_aesenclast_epi128(e[p], rk[10]));
                VA_SUFFIX(store2)(d[2 * p] + o, d[2 * p + 1] + o, x[p]);
            }
            if (ODD) {
                xo = _mm_xor_si128(xo, _mm_aesenclast_si128(eo, RK(10)));
                _mm_storeu_si128((__m128i *)(d[NL - 1] + o), xo);
            }
        }
#pragma GCC unroll 4
        for (int p = 0; p < NP; p++) m[p] = _mm256_xor_si256(m[p], _mm256_xor_si256(x[p], rk[0]));
        if (ODD) mo = _mm_xor_si128(mo, _mm_xor_si128(xo, RK(0)));
#pragma GCC unroll 9
        for (int r = 1; r < 10; r++) {
#pragma GCC unroll 4
            for (int p = 0; p < NP; p++) {
                m[p] = _mm256_aesenc_epi128(m[p], rk[r]);
                if (MODE == MF_MODE_ENC) e[p] = _mm256_aesenc_epi128(e[p], rk[r]);
            }
            if (ODD) {
                mo = _mm_aesenc_si128(mo, RK(r));
                if (MODE == MF_MODE_ENC) eo = _mm_aesenc_si128(eo, RK(r));
            }
        }
#pragma GCC unroll 4
        for (int p = 0; p < NP; p++) {
            m[p] = _mm256_aesenclast_epi128(m[p], rk[10]);
            if (MODE == MF_MODE_ENC)
                VA_SUFFIX(store2)(d[2 * p] + o, d[2 * p + 1] + o,
                                  _mm256_xor_si256(x[p], _mm256_aesenclast_epi128(e[p], rk[10])));
        }
        if (ODD) {
            mo = _mm_aesenclast_si128(mo, RK(10));
            if (MODE == MF_MODE_ENC)
                _mm_storeu_si128((__m128i *)(d[NL - 1] + o),
                                 _mm_xor_si128(xo, _mm_aesenclast_si128(eo, RK(10))));
        }
    }
#undef RK
#undef BS128
#undef ONE128
#pragma GCC unroll 4
    for (int p = 0; p < NP; p++) VA_SUFFIX(store2)(L[2 * p].mac, L[2 * p + 1].mac, m[p]);
    if (ODD) _mm_storeu_si128((__m128i *)L[NL - 1].mac, mo);
#pragma GCC unroll 8
    for (int l = 0; l < NL; l++) {
        L[l].src += 16 * n;
        if (MODE != MF_MODE_MAC) L[l].dst += 16 * n;
        L[l].ctr += n;
    }
}

VT static void VA_SUFFIX(va_lanes)(const mf_aes_key *k, const uint8_t nonce[8], int mode, int nl,
                                   mf_lane *L, size_t n)
{
    LANE_DISPATCH(VA_SUFFIX(va_lanes_t))
}

#undef VT
