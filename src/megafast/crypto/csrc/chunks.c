/* MEGA chunk geometry, the multi-chain chunk-MAC scheduler and the small kernels built on the
 * per-CPU primitives (fold, prepare_key, stringhash, node decryption). */
#include <stdlib.h>
#include <string.h>

#include "mfcrypto.h"

#define SMALL ((uint64_t)8192)              /* 128 KiB in blocks */
#define BIG ((uint64_t)65536)               /* 1 MiB in blocks */
#define LAST_GROWING (36 * SMALL)           /* 4608 KiB: chunks are 1 MiB from here on */

uint64_t mf_chunk_start_blk(uint64_t blk)
{
    if (blk >= LAST_GROWING) return LAST_GROWING + (blk - LAST_GROWING) / BIG * BIG;
    uint64_t b = 0;
    for (uint64_t i = 1; i <= 8; i++) {
        if (blk < b + i * SMALL) return b;
        b += i * SMALL;
    }
    return b; /* not reached */
}

uint64_t mf_chunk_left_blk(uint64_t blk)
{
    if (blk >= LAST_GROWING) return BIG - (blk - LAST_GROWING) % BIG;
    uint64_t b = 0;
    for (uint64_t i = 1; i <= 8; i++) {
        b += i * SMALL;
        if (blk < b) return b - blk;
    }
    return 0; /* not reached */
}

size_t mf_count_pieces(uint64_t blk, size_t len)
{
    size_t n = 0;
    while (len) {
        uint64_t left = mf_chunk_left_blk(blk);
        size_t take = (uint64_t)len < left * 16 ? len : (size_t)(left * 16);
        n++;
        len -= take;
        blk += left;
    }
    return n ? n : 1;
}

typedef struct {
    size_t idx;          /* piece number: position in `done` */
    uint64_t chunk;      /* chunk start (blocks) */
    size_t rem;          /* whole blocks left */
    size_t tail;         /* bytes of a final partial block (final only) */
    int completes;       /* the piece ends its chunk */
} lane_meta;

static void finish_tail(const mf_kernel *kern, const mf_aes_key *ak, const uint8_t nonce[8],
                        int mode, mf_lane *ln, size_t t)
{
    uint8_t buf[16];
    memset(buf, 0, sizeof buf);
    memcpy(buf, ln->src, t);
    mf_lane tl = *ln;
    tl.src = buf;
    tl.dst = buf;
    if (mode == MF_MODE_DEC) {
        kern->ctr_xor(ak, nonce, ln->ctr, 0, buf, buf, t);
        kern->lanes(ak, nonce, MF_MODE_MAC, 1, &tl, 1);
        memcpy(ln->dst, buf, t);
    } else {
        kern->lanes(ak, nonce, MF_MODE_MAC, 1, &tl, 1); /* zero-padded plaintext */
        if (mode == MF_MODE_ENC) {
            kern->ctr_xor(ak, nonce, ln->ctr, 0, buf, buf, t);
            memcpy(ln->dst, buf, t);
        }
    }
    memcpy(ln->mac, tl.mac, 16);
    memset(buf, 0, sizeof buf);
}

/* The chain of lane l stands on a mark: a multiple of mark_blk blocks into its chunk, past
 * the chunk's start, with more of the chunk's MAC still to come. */
static int on_mark(const mf_lane *ln, const lane_meta *mt, uint64_t mark_blk)
{
    uint64_t into = ln->ctr - mt->chunk;
    if (into == 0 || into % mark_blk) return 0;
    return mt->rem || mt->tail || !mt->completes;
}

size_t mf_chunk_macs(const mf_kernel *kern, const uint8_t key[16], const uint8_t nonce[8],
                     int mode, uint64_t blk, const uint8_t *src, uint8_t *dst, size_t len,
                     const uint8_t *mac_in, int final, mf_done *done, uint8_t mac_out[16],
                     int *has_out, uint64_t mark_blk, mf_done *marks, size_t *nmarks)
{
    *has_out = 0;
    if (nmarks) *nmarks = 0;
    if (len == 0) {
        if (!mac_in) return 0;
        if (final) {
            done[0].start = mf_chunk_start_blk(blk);
            memcpy(done[0].mac, mac_in, 16);
            return 1;
        }
        memcpy(mac_out, mac_in, 16);
        *has_out = 1;
        return 0;
    }
    mf_aes_key ak;
    kern->expand(key, &ak, 0);
    uint8_t iv2[16];
    memcpy(iv2, nonce, 8);
    memcpy(iv2 + 8, nonce, 8);

    mf_lane act[MF_MAX_LANES];
    lane_meta meta[MF_MAX_LANES];
    int nact = 0;
    size_t pos = 0, npieces = 0, ndone = 0;
    uint64_t pblk = blk;
    for (;;) {
        while (nact < MF_MAX_LANES && pos < len) {
            uint64_t left = mf_chunk_left_blk(pblk);
            size_t rest = len - pos;
            size_t n = (uint64_t)rest < left * 16 ? rest : (size_t)(left * 16);
            mf_lane *ln = &act[nact];
            lane_meta *mt = &meta[nact];
            ln->src = src + pos;
            ln->dst = dst ? dst + pos : NULL;
            ln->ctr = pblk;
            memcpy(ln->mac, (pos == 0 && mac_in) ? mac_in : iv2, 16);
            mt->idx = npieces++;
            mt->chunk = mf_chunk_start_blk(pblk);
            mt->rem = n / 16;
            mt->tail = n % 16;
            mt->completes = ((uint64_t)n == left * 16) || (final && n == rest);
            pos += n;
            pblk += left; /* only used again when this piece ended its chunk */
            nact++;
        }
        if (nact == 0) break;
        size_t m = (size_t)-1;
        for (int l = 0; l < nact; l++)
            if (meta[l].rem < m) m = meta[l].rem;
        if (mark_blk) /* every chain stops at its next mark */
            for (int l = 0; l < nact; l++) {
                uint64_t to = mark_blk - (act[l].ctr - meta[l].chunk) % mark_blk;
                if (to < m) m = to;
            }
        if (m > 0) {
            kern->lanes(&ak, nonce, mode, nact, act, m);
            for (int l = 0; l < nact; l++) meta[l].rem -= m;
            if (mark_blk) /* the chains have moved: those on a mark record it */
                for (int l = 0; l < nact; l++)
                    if (on_mark(&act[l], &meta[l], mark_blk)) {
                        marks[*nmarks].start = act[l].ctr;
                        memcpy(marks[*nmarks].mac, act[l].mac, 16);
                        (*nmarks)++;
                    }
        }
        for (int l = 0; l < nact;) {
            if (meta[l].rem) {
                l++;
                continue;
            }
            if (meta[l].tail) finish_tail(kern, &ak, nonce, mode, &act[l], meta[l].tail);
            if (meta[l].completes) {
                done[meta[l].idx].start = meta[l].chunk;
                memcpy(done[meta[l].idx].mac, act[l].mac, 16);
                ndone++;
            } else {
                memcpy(mac_out, act[l].mac, 16);
                *has_out = 1;
            }
            nact--;
            if (l != nact) {
                act[l] = act[nact];
                meta[l] = meta[nact];
            }
        }
    }
    memset(&ak, 0, sizeof ak);
    return ndone;
}

void mf_fold_meta_mac(const mf_kernel *kern, const uint8_t key[16], const uint8_t *macs,
                      size_t nmacs, uint8_t out[8])
{
    uint8_t fm[16];
    memset(fm, 0, sizeof fm);
    if (nmacs) {
        mf_aes_key ak;
        kern->expand(key, &ak, 0);
        for (size_t i = 0; i < nmacs; i++) {
            for (int j = 0; j < 16; j++) fm[j] ^= macs[16 * i + j];
            kern->encrypt_block(&ak, fm, fm);
        }
        memset(&ak, 0, sizeof ak);
    }
    for (int j = 0; j < 4; j++) {
        out[j] = fm[j] ^ fm[4 + j];
        out[4 + j] = fm[8 + j] ^ fm[12 + j];
    }
}

int mf_prepare_key(const mf_kernel *kern, const uint8_t *pw, size_t len, uint8_t out[16])
{
    static const uint8_t start[16] = {0x93, 0xC4, 0x67, 0xE3, 0x7D, 0xB0, 0xC7, 0xA4,
                                      0xD1, 0xBE, 0x3F, 0x81, 0x01, 0x52, 0xCB, 0x56};
    memcpy(out, start, 16);
    if (len == 0) return 0;
    size_t nblocks = (len + 15) / 16;
    uint8_t *blocks = (uint8_t *)calloc(nblocks, 16);
    if (!blocks) return -1;
    memcpy(blocks, pw, len);
    int rc = kern->prepare_key(blocks, nblocks, out);
    memset(blocks, 0, nblocks * 16);
    free(blocks);
    return rc;
}

void mf_stringhash(const mf_kernel *kern, const uint8_t *data, size_t len, const uint8_t key[16],
                   uint8_t out[8])
{
    uint8_t h[16];
    memset(h, 0, sizeof h);
    for (size_t i = 0; i < len; i++) h[i % 16] ^= data[i];
    mf_aes_key ak;
    kern->expand(key, &ak, 0);
    kern->encrypt_repeat(&ak, h, 16384);
    memcpy(out, h, 4);
    memcpy(out + 4, h + 8, 4);
    memset(&ak, 0, sizeof ak);
}

void mf_ctr_xor(const mf_kernel *kern, const uint8_t key[16], const uint8_t nonce[8],
                uint64_t blk, unsigned skip, const uint8_t *src, uint8_t *dst, size_t len)
{
    if (len == 0) return;
    mf_aes_key ak;
    kern->expand(key, &ak, 0);
    kern->ctr_xor(&ak, nonce, blk, skip, src, dst, len);
    memset(&ak, 0, sizeof ak);
}

void mf_decrypt_nodes(const mf_kernel *kern, mf_node *nodes, size_t n)
{
    mf_aes_key kek, ak;
    const uint8_t *cur_kek = NULL;
    uint8_t cur_bytes[16];
    for (size_t i = 0; i < n; i++) {
        mf_node *nd = &nodes[i];
        nd->key_len = 0;
        nd->attr_json_len = -1;
        if (nd->enc_key_len != 16 && nd->enc_key_len != 32) continue;
        if (cur_kek != nd->kek && (!cur_kek || memcmp(cur_bytes, nd->kek, 16) != 0)) {
            kern->expand(nd->kek, &kek, 1);
            memcpy(cur_bytes, nd->kek, 16);
        }
        cur_kek = nd->kek;
        kern->ecb_decrypt(&kek, nd->enc_key, nd->key_out, nd->enc_key_len / 16);
        nd->key_len = (int)nd->enc_key_len;
        if (nd->enc_attr_len == 0 || nd->enc_attr_len % 16) continue;
        uint8_t akey[16];
        memcpy(akey, nd->key_out, 16);
        if (nd->enc_key_len == 32)
            for (int j = 0; j < 16; j++) akey[j] ^= nd->key_out[16 + j];
        kern->expand(akey, &ak, 1);
        kern->cbc_decrypt(&ak, nd->enc_attr, nd->attr_out, nd->enc_attr_len / 16);
        const uint8_t *p = nd->attr_out;
        if (memcmp(p, "MEGA{\"", 6) != 0) continue;
        size_t e = nd->enc_attr_len;
        while (e > 4 && p[e - 1] == 0) e--;
        nd->attr_json_len = (long)(e - 4);
    }
    memset(&kek, 0, sizeof kek);
    memset(&ak, 0, sizeof ak);
}
