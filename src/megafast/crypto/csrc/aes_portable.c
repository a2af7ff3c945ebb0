/* Portable AES-128 (32-bit T-tables) and the portable kernel table.
 *
 * Used on CPUs without AES-NI and on non-x86 builds. Tables are built once by
 * mf_portable_init() (called at module import, with the GIL held). Not constant-time: the
 * hardware paths are preferred whenever the CPU has them.
 */
#include <stdlib.h>
#include <string.h>

#include "mfcrypto.h"

static uint8_t SBOX[256], INV_SBOX[256];
static uint32_t TE[4][256], TD[4][256];
static int tables_ready = 0;

static uint8_t xtime(uint8_t x) { return (uint8_t)((x << 1) ^ ((x & 0x80) ? 0x1b : 0)); }

static uint8_t gmul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    while (b) {
        if (b & 1) r ^= a;
        a = xtime(a);
        b >>= 1;
    }
    return r;
}

static uint32_t ror8(uint32_t x) { return (x >> 8) | (x << 24); }

void mf_portable_init(void)
{
    if (tables_ready) return;
    /* S-box from the multiplicative inverse and the affine map. */
    for (int x = 0; x < 256; x++) {
        uint8_t inv = 0;
        if (x) {
            for (int y = 1; y < 256; y++) {
                if (gmul((uint8_t)x, (uint8_t)y) == 1) {
                    inv = (uint8_t)y;
                    break;
                }
            }
        }
        uint8_t s = inv;
        uint8_t r = inv;
        for (int i = 0; i < 4; i++) {
            r = (uint8_t)((r << 1) | (r >> 7));
            s ^= r;
        }
        s ^= 0x63;
        SBOX[x] = s;
        INV_SBOX[s] = (uint8_t)x;
    }
    for (int x = 0; x < 256; x++) {
        uint8_t s = SBOX[x];
        uint32_t te = ((uint32_t)gmul(s, 2) << 24) | ((uint32_t)s << 16) | ((uint32_t)s << 8) |
                      (uint32_t)gmul(s, 3);
        uint8_t is = INV_SBOX[x];
        uint32_t td = ((uint32_t)gmul(is, 14) << 24) | ((uint32_t)gmul(is, 9) << 16) |
                      ((uint32_t)gmul(is, 13) << 8) | (uint32_t)gmul(is, 11);
        for (int t = 0; t < 4; t++) {
            TE[t][x] = te;
            TD[t][x] = td;
            te = ror8(te);
            td = ror8(td);
        }
    }
    tables_ready = 1;
}

static inline uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void load_rk(const uint8_t rk[11][16], uint32_t w[44])
{
    for (int i = 0; i < 44; i++) w[i] = ld32(rk[i / 4] + 4 * (i % 4));
}

static inline void enc_words(const uint32_t *rk, uint32_t s[4])
{
    uint32_t s0 = s[0] ^ rk[0], s1 = s[1] ^ rk[1], s2 = s[2] ^ rk[2], s3 = s[3] ^ rk[3];
    uint32_t t0, t1, t2, t3;
    for (int r = 1; r < 10; r++) {
        const uint32_t *k = rk + 4 * r;
        t0 = TE[0][s0 >> 24] ^ TE[1][(s1 >> 16) & 255] ^ TE[2][(s2 >> 8) & 255] ^ TE[3][s3 & 255] ^ k[0];
        t1 = TE[0][s1 >> 24] ^ TE[1][(s2 >> 16) & 255] ^ TE[2][(s3 >> 8) & 255] ^ TE[3][s0 & 255] ^ k[1];
        t2 = TE[0][s2 >> 24] ^ TE[1][(s3 >> 16) & 255] ^ TE[2][(s0 >> 8) & 255] ^ TE[3][s1 & 255] ^ k[2];
        t3 = TE[0][s3 >> 24] ^ TE[1][(s0 >> 16) & 255] ^ TE[2][(s1 >> 8) & 255] ^ TE[3][s2 & 255] ^ k[3];
        s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
    const uint32_t *k = rk + 40;
#define SB(x, sh) ((uint32_t)SBOX[((x) >> (sh)) & 255] << (sh))
    s[0] = (SB(s0, 24) | SB(s1, 16) | SB(s2, 8) | SB(s3, 0)) ^ k[0];
    s[1] = (SB(s1, 24) | SB(s2, 16) | SB(s3, 8) | SB(s0, 0)) ^ k[1];
    s[2] = (SB(s2, 24) | SB(s3, 16) | SB(s0, 8) | SB(s1, 0)) ^ k[2];
    s[3] = (SB(s3, 24) | SB(s0, 16) | SB(s1, 8) | SB(s2, 0)) ^ k[3];
#undef SB
}

static inline void dec_words(const uint32_t *rk, uint32_t s[4])
{
    uint32_t s0 = s[0] ^ rk[0], s1 = s[1] ^ rk[1], s2 = s[2] ^ rk[2], s3 = s[3] ^ rk[3];
    uint32_t t0, t1, t2, t3;
    for (int r = 1; r < 10; r++) {
        const uint32_t *k = rk + 4 * r;
        t0 = TD[0][s0 >> 24] ^ TD[1][(s3 >> 16) & 255] ^ TD[2][(s2 >> 8) & 255] ^ TD[3][s1 & 255] ^ k[0];
        t1 = TD[0][s1 >> 24] ^ TD[1][(s0 >> 16) & 255] ^ TD[2][(s3 >> 8) & 255] ^ TD[3][s2 & 255] ^ k[1];
        t2 = TD[0][s2 >> 24] ^ TD[1][(s1 >> 16) & 255] ^ TD[2][(s0 >> 8) & 255] ^ TD[3][s3 & 255] ^ k[2];
        t3 = TD[0][s3 >> 24] ^ TD[1][(s2 >> 16) & 255] ^ TD[2][(s1 >> 8) & 255] ^ TD[3][s0 & 255] ^ k[3];
        s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
    const uint32_t *k = rk + 40;
#define IB(x, sh) ((uint32_t)INV_SBOX[((x) >> (sh)) & 255] << (sh))
    s[0] = (IB(s0, 24) | IB(s3, 16) | IB(s2, 8) | IB(s1, 0)) ^ k[0];
    s[1] = (IB(s1, 24) | IB(s0, 16) | IB(s3, 8) | IB(s2, 0)) ^ k[1];
    s[2] = (IB(s2, 24) | IB(s1, 16) | IB(s0, 8) | IB(s3, 0)) ^ k[2];
    s[3] = (IB(s3, 24) | IB(s2, 16) | IB(s1, 8) | IB(s0, 0)) ^ k[3];
#undef IB
}

static inline void ld_block(const uint8_t *p, uint32_t s[4])
{
    s[0] = ld32(p); s[1] = ld32(p + 4); s[2] = ld32(p + 8); s[3] = ld32(p + 12);
}

static inline void st_block(uint8_t *p, const uint32_t s[4])
{
    st32(p, s[0]); st32(p + 4, s[1]); st32(p + 8, s[2]); st32(p + 12, s[3]);
}

static void expand_words(const uint8_t key[16], uint32_t w[44])
{
    static const uint8_t rcon[10] = {1, 2, 4, 8, 16, 32, 64, 128, 0x1b, 0x36};
    for (int i = 0; i < 4; i++) w[i] = ld32(key + 4 * i);
    for (int i = 4; i < 44; i++) {
        uint32_t t = w[i - 1];
        if (i % 4 == 0) {
            t = ((uint32_t)SBOX[(t >> 16) & 255] << 24) | ((uint32_t)SBOX[(t >> 8) & 255] << 16) |
                ((uint32_t)SBOX[t & 255] << 8) | (uint32_t)SBOX[t >> 24];
            t ^= (uint32_t)rcon[i / 4 - 1] << 24;
        }
        w[i] = w[i - 4] ^ t;
    }
}

static void p_expand(const uint8_t key[16], mf_aes_key *out, int want_dec)
{
    uint32_t w[44];
    expand_words(key, w);
    for (int i = 0; i < 44; i++) st32(out->enc[i / 4] + 4 * (i % 4), w[i]);
    if (!want_dec) return;
    /* Equivalent inverse cipher: reversed order, InvMixColumns on the middle keys. */
    for (int r = 0; r < 11; r++) {
        for (int c = 0; c < 4; c++) {
            uint32_t v = w[4 * (10 - r) + c];
            if (r > 0 && r < 10) {
                v = TD[0][SBOX[v >> 24]] ^ TD[1][SBOX[(v >> 16) & 255]] ^
                    TD[2][SBOX[(v >> 8) & 255]] ^ TD[3][SBOX[v & 255]];
            }
            st32(out->dec[r] + 4 * c, v);
        }
    }
}

static void p_encrypt_block(const mf_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    uint32_t rk[44], s[4];
    load_rk(k->enc, rk);
    ld_block(in, s);
    enc_words(rk, s);
    st_block(out, s);
}

static void p_ecb_decrypt(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t n)
{
    uint32_t rk[44], s[4];
    load_rk(k->dec, rk);
    for (size_t i = 0; i < n; i++) {
        ld_block(in + 16 * i, s);
        dec_words(rk, s);
        st_block(out + 16 * i, s);
    }
}

static void p_cbc_decrypt(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t n)
{
    uint32_t rk[44], s[4], prev[4] = {0, 0, 0, 0}, c[4];
    load_rk(k->dec, rk);
    for (size_t i = 0; i < n; i++) {
        ld_block(in + 16 * i, c);
        s[0] = c[0]; s[1] = c[1]; s[2] = c[2]; s[3] = c[3];
        dec_words(rk, s);
        for (int j = 0; j < 4; j++) s[j] ^= prev[j];
        st_block(out + 16 * i, s);
        for (int j = 0; j < 4; j++) prev[j] = c[j];
    }
}

static inline void ctr_words(const uint8_t nonce[8], uint64_t idx, uint32_t s[4])
{
    s[0] = ld32(nonce);
    s[1] = ld32(nonce + 4);
    s[2] = (uint32_t)(idx >> 32);
    s[3] = (uint32_t)idx;
}

static void p_ctr_xor(const mf_aes_key *k, const uint8_t nonce[8], uint64_t blk, unsigned skip0,
                      const uint8_t *src, uint8_t *dst, size_t len)
{
    uint32_t rk[44], s[4];
    uint8_t ks[16];
    load_rk(k->enc, rk);
    uint64_t idx = blk;
    size_t skip = skip0, pos = 0;
    while (pos < len) {
        ctr_words(nonce, idx++, s);
        enc_words(rk, s);
        st_block(ks, s);
        size_t n = 16 - skip;
        if (n > len - pos) n = len - pos;
        for (size_t i = 0; i < n; i++) dst[pos + i] = src[pos + i] ^ ks[skip + i];
        pos += n;
        skip = 0;
    }
}

static void p_lanes(const mf_aes_key *k, const uint8_t nonce[8], int mode, int nl, mf_lane *lanes,
                    size_t nblocks)
{
    uint32_t rk[44];
    load_rk(k->enc, rk);
    for (int l = 0; l < nl; l++) {
        mf_lane *L = &lanes[l];
        uint32_t m[4], x[4], ks[4] = {0, 0, 0, 0};
        ld_block(L->mac, m);
        for (size_t i = 0; i < nblocks; i++) {
            ld_block(L->src + 16 * i, x);
            if (mode != MF_MODE_MAC) {
                ctr_words(nonce, L->ctr + i, ks);
                enc_words(rk, ks);
            }
            if (mode == MF_MODE_DEC) {
                for (int j = 0; j < 4; j++) x[j] ^= ks[j];
                st_block(L->dst + 16 * i, x);
            }
            for (int j = 0; j < 4; j++) m[j] ^= x[j];
            enc_words(rk, m);
            if (mode == MF_MODE_ENC) {
                for (int j = 0; j < 4; j++) x[j] ^= ks[j];
                st_block(L->dst + 16 * i, x);
            }
        }
        st_block(L->mac, m);
        L->src += 16 * nblocks;
        if (mode != MF_MODE_MAC) L->dst += 16 * nblocks;
        L->ctr += nblocks;
    }
}

static int p_prepare_key(const uint8_t *blocks, size_t nblocks, uint8_t pkey[16])
{
    uint32_t *rks = NULL, one[44], s[4];
    if (nblocks == 1) {
        rks = one;
    } else {
        rks = (uint32_t *)malloc(sizeof(uint32_t) * 44 * nblocks);
        if (!rks) return -1;
    }
    for (size_t b = 0; b < nblocks; b++) expand_words(blocks + 16 * b, rks + 44 * b);
    ld_block(pkey, s);
    for (int r = 0; r < 65536; r++)
        for (size_t b = 0; b < nblocks; b++) enc_words(rks + 44 * b, s);
    st_block(pkey, s);
    if (rks != one) free(rks);
    return 0;
}

static void p_encrypt_repeat(const mf_aes_key *k, uint8_t block[16], uint32_t rounds)
{
    uint32_t rk[44], s[4];
    load_rk(k->enc, rk);
    ld_block(block, s);
    for (uint32_t r = 0; r < rounds; r++) enc_words(rk, s);
    st_block(block, s);
}

const mf_kernel mf_kernel_portable = {
    "portable",    p_expand,  p_encrypt_block, p_ecb_decrypt,     p_cbc_decrypt,
    p_ctr_xor,     p_lanes,   p_prepare_key,   p_encrypt_repeat,
};
