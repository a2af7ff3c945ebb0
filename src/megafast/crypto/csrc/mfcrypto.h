/* megafast native crypto core: kernel table shared by the portable, AES-NI and VAES paths.
 *
 * Every function here is pure C, takes no locks and touches no Python object, so the Cython
 * wrapper can call it inside `with nogil`. Argument checking happens in the wrapper.
 */
#ifndef MFCRYPTO_H
#define MFCRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* MF_NO_X86 builds the portable path only, as on other CPUs (used to test that build). */
#if !defined(MF_NO_X86) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define MF_X86 1
#else
#define MF_X86 0
#endif

#define MF_MODE_MAC 0     /* MAC src (plaintext), no output */
#define MF_MODE_DEC 1     /* dst = CTR(src); MAC dst (the plaintext) */
#define MF_MODE_ENC 2     /* MAC src (plaintext); dst = CTR(src) */

#define MF_MAX_LANES 8

/* Expanded AES-128 key: 11 encryption round keys and 11 decryption round keys
 * (equivalent inverse cipher order, as used by AESDEC and the portable Td tables). */
typedef struct {
    uint8_t enc[11][16];
    uint8_t dec[11][16];
} mf_aes_key;

/* One independent CBC-MAC chain over a run of whole 16-byte blocks. */
typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    uint64_t ctr;        /* CTR block index of src[0] */
    uint8_t mac[16];
} mf_lane;

typedef struct {
    uint64_t start;      /* chunk start in the file, in 16-byte blocks */
    uint8_t mac[16];
} mf_done;

typedef struct {
    const char *name;
    void (*expand)(const uint8_t key[16], mf_aes_key *out, int want_dec);
    void (*encrypt_block)(const mf_aes_key *k, const uint8_t in[16], uint8_t out[16]);
    /* nblocks whole blocks of ECB decryption (in may equal out). */
    void (*ecb_decrypt)(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t nblocks);
    /* CBC decryption with a zero IV (in may equal out). */
    void (*cbc_decrypt)(const mf_aes_key *k, const uint8_t *in, uint8_t *out, size_t nblocks);
    /* dst[i] = src[i] ^ keystream[16 * blk + skip + i] (skip < 16) */
    void (*ctr_xor)(const mf_aes_key *k, const uint8_t nonce[8], uint64_t blk, unsigned skip,
                    const uint8_t *src, uint8_t *dst, size_t len);
    /* Advance nl chains by nblocks whole blocks each (mode: MF_MODE_*). */
    void (*lanes)(const mf_aes_key *k, const uint8_t nonce[8], int mode, int nl, mf_lane *lanes,
                  size_t nblocks);
    /* 65536 rounds of pkey = AES(block_j, pkey) over nblocks 16-byte key blocks. */
    int (*prepare_key)(const uint8_t *blocks, size_t nblocks, uint8_t pkey[16]); /* -1: no memory */
    /* block = AES(k, block) `rounds` times. */
    void (*encrypt_repeat)(const mf_aes_key *k, uint8_t block[16], uint32_t rounds);
} mf_kernel;

/* cpu.c */
typedef struct {
    int aes, pclmulqdq, ssse3, sse41, avx, avx2, vaes, vpclmulqdq, avx512f, avx512vl, avx512bw,
        sha_ni, os_avx, os_avx512;
} mf_cpu_features;
const mf_cpu_features *mf_cpu(void);

/* aes_portable.c */
extern const mf_kernel mf_kernel_portable;
void mf_portable_init(void);

/* aes_x86.c: "aesni" or "vaes" kernel when this build and CPU can run it, else NULL.
 * "vaes" is the best VAES variant; "vaes-avx512" (32 registers) and "vaes-avx2" name one. */
const mf_kernel *mf_x86_kernel(const char *name);

/* chunks.c: MEGA chunk geometry (in 16-byte blocks, so file offsets up to 2**68 work) and
 * the multi-chain scheduler */
uint64_t mf_chunk_start_blk(uint64_t blk);
uint64_t mf_chunk_left_blk(uint64_t blk);      /* blocks from blk to the end of its chunk */
/* Number of pieces (chunk-bounded runs) of len bytes from block blk; at least 1. */
size_t mf_count_pieces(uint64_t blk, size_t len);
/* Chunk MAC work over len bytes from block blk; len % 16 == 0 unless final.
 * mac_in NULL: the chain starts from nonce||nonce (blk must be a chunk start).
 * done: room for mf_count_pieces(blk, len) entries. Returns the number of completed
 * chunks; *has_out tells whether mac_out holds a running MAC.
 * mark_blk > 0 (a divisor of 8192, the smallest chunk) also records the running MAC (start:
 * the file block it stands before) at each mark: every mark_blk blocks into a chunk, past its
 * start, where its MAC goes on; marks
 * needs room for len / (16 * mark_blk) + 1 entries and *nmarks gets their number (the
 * order is not the file's: chains run side by side). mark_blk 0: marks and nmarks unused. */
size_t mf_chunk_macs(const mf_kernel *kern, const uint8_t key[16], const uint8_t nonce[8],
                     int mode, uint64_t blk, const uint8_t *src, uint8_t *dst, size_t len,
                     const uint8_t *mac_in, int final, mf_done *done, uint8_t mac_out[16],
                     int *has_out, uint64_t mark_blk, mf_done *marks, size_t *nmarks);

void mf_fold_meta_mac(const mf_kernel *kern, const uint8_t key[16], const uint8_t *macs,
                      size_t nmacs, uint8_t out[8]);
int mf_prepare_key(const mf_kernel *kern, const uint8_t *pw, size_t len, uint8_t out[16]);
void mf_stringhash(const mf_kernel *kern, const uint8_t *data, size_t len, const uint8_t key[16],
                   uint8_t out[8]);
void mf_ctr_xor(const mf_kernel *kern, const uint8_t key[16], const uint8_t nonce[8],
                uint64_t blk, unsigned skip, const uint8_t *src, uint8_t *dst, size_t len);

/* Node decryption, one mf_node per node. The node key (16 or 32 bytes; any other length
 * leaves key_len 0 and the node skipped) is AES-ECB-decrypted under kek into key_out and
 * key_len set to its length. The attributes (a non-zero multiple of 16 bytes) are
 * AES-CBC-decrypted (zero IV) into attr_out under the folded key (k[0..15] ^ k[16..31] for a
 * 32-byte file key); when they start with `MEGA{"`, attr_json_len is the length of the JSON at
 * attr_out + 4 with the zero padding removed, else -1. */
typedef struct {
    const uint8_t *kek;          /* 16 bytes */
    const uint8_t *enc_key;
    size_t enc_key_len;
    const uint8_t *enc_attr;
    size_t enc_attr_len;
    uint8_t *key_out;            /* 32 bytes room */
    uint8_t *attr_out;           /* enc_attr_len bytes room */
    int key_len;                 /* out */
    long attr_json_len;          /* out: -1 none, else length of JSON at attr_out + 4 */
} mf_node;
void mf_decrypt_nodes(const mf_kernel *kern, mf_node *nodes, size_t n);

/* scan.c: the node listing scanner (the `f` array of MEGA's fetch-nodes answer).
 * mf_scan_node skips JSON whitespace and commas from pos; returns 0 when the text ends first
 * or inside an object (more text needed), -1 when the next byte (at out->start) is not '{',
 * 1 for an object spanning [out->start, out->end) (brackets matched, strings skipped with
 * their backslash escapes). out->usual is 1 when the object has the usual shape: members
 * only among h p u a k fa (strings of printable ASCII without '"' or '\\') and t s ts
 * (non-negative integers of at most 18 digits, no leading zero), each at most once, h p u a
 * k t present, h not empty, t 0 or 1, whitespace only where JSON allows it; then
 * str_start/str_len give the string values (inside the quotes; order h p u a k fa), t, s,
 * ts (0 when absent) and has_fa are set. A usual object is valid JSON; any other one is for
 * a real JSON parser. */
typedef struct {
    size_t start, end;
    int usual;
    size_t str_start[6];
    size_t str_len[6];
    int t;
    int has_fa;
    int64_t s, ts;
} mf_scan_out;
int mf_scan_node(const uint8_t *buf, size_t len, size_t pos, mf_scan_out *out);
/* Strict unpadded base64url: only A-Z a-z 0-9 - _, n % 4 != 1; trailing bits ignored.
 * Returns the decoded length, or -1 (bad text, or more than cap bytes). */
long mf_b64url_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);
/* The name in decrypted attribute JSON of the simple shape: one object (JSON whitespace
 * around) of 1..MF_ATTR_MAX_MEMBERS members with distinct keys, every key and string value
 * free of '"', '\\' and bytes below 0x20, every other value a JSON integer, and an "n"
 * member with a string value. Returns 1 with the name's span (inside the quotes) and the
 * member count, else 0 (the caller parses the JSON itself). */
#define MF_ATTR_MAX_MEMBERS 16
/* CRC-32 (zlib's: reflected 0xEDB88320, ~0 in and out) of n bytes. */
uint32_t mf_crc32(const uint8_t *data, size_t n);
int mf_attr_name(const uint8_t *js, size_t len, size_t *name_start, size_t *name_len,
                 int *members);

/* sha256.c */
int mf_sha_ni_available(void);
int mf_hashcash_avx512_available(void);
#define MF_HASH_PORTABLE 0
#define MF_HASH_SHA_NI 1
#define MF_HASH_AVX512 2  /* 16 tries at once; the rest of a batch with SHA-NI or portable */
/* Returns the smallest n in [start, start+count) meeting the threshold, or -1. */
int64_t mf_hashcash_search(const uint8_t token[48], uint32_t threshold, uint64_t start,
                           uint64_t count, int impl);
void mf_sha256(const uint8_t *data, size_t len, uint8_t out[32], int use_sha_ni);

#endif
