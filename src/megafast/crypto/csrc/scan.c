/* Node listing scanner: cut MEGA's `f` array into node objects and read the usual ones.
 *
 * mf_scan_node looks at one element of the array (see mfcrypto.h for the contract). It never
 * builds anything: it reports the object's span and, for an object of the usual shape, the
 * spans of its string values and its integers. Objects of any other shape are only spanned
 * (string-aware bracket matching), so a crafted string can never move another node's
 * boundaries; the caller parses them with a real JSON parser. Every read is bounded by len. */

#include "mfcrypto.h"

#include <string.h>

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Field ids, in mf_scan_out.str_start order for the string fields. */
enum { F_H, F_P, F_U, F_A, F_K, F_FA, F_T, F_S, F_TS, F_COUNT };

static int field_id(const uint8_t *s, size_t n) {
    if (n == 1) {
        switch (s[0]) {
        case 'h': return F_H;
        case 'p': return F_P;
        case 'u': return F_U;
        case 'a': return F_A;
        case 'k': return F_K;
        case 't': return F_T;
        case 's': return F_S;
        default: return -1;
        }
    }
    if (n == 2 && s[0] == 't' && s[1] == 's') return F_TS;
    if (n == 2 && s[0] == 'f' && s[1] == 'a') return F_FA;
    return -1;
}

/* A plain string at buf[i] == '"': printable ASCII without '"' or '\\' up to the closing
 * quote (at most end). Returns the index after the closing quote, or 0 when not plain. */
static size_t plain_string(const uint8_t *buf, size_t i, size_t end) {
    size_t j = i + 1;
    while (j < end) {
        uint8_t c = buf[j];
        if (c == '"') return j + 1;
        if (c < 0x20 || c > 0x7e || c == '\\') return 0;
        j++;
    }
    return 0;
}

/* The usual shape (mfcrypto.h); 1 and out filled, or 0. */
static int usual_shape(const uint8_t *buf, size_t start, size_t end, mf_scan_out *out) {
    size_t i = start + 1, last = end - 1; /* buf[start] == '{', buf[last] == '}' */
    unsigned seen = 0;
    int first = 1;
    for (;;) {
        while (i < last && is_ws(buf[i])) i++;
        if (i == last) break;
        if (!first) {
            if (buf[i] != ',') return 0;
            i++;
            while (i < last && is_ws(buf[i])) i++;
        }
        first = 0;
        if (i >= last || buf[i] != '"') return 0;
        size_t kend = plain_string(buf, i, last);
        if (!kend) return 0;
        int id = field_id(buf + i + 1, kend - i - 2);
        if (id < 0 || (seen & (1u << id))) return 0;
        seen |= 1u << id;
        i = kend;
        while (i < last && is_ws(buf[i])) i++;
        if (i >= last || buf[i] != ':') return 0;
        i++;
        while (i < last && is_ws(buf[i])) i++;
        if (i >= last) return 0;
        if (id <= F_FA) {
            if (buf[i] != '"') return 0;
            size_t vend = plain_string(buf, i, last);
            if (!vend) return 0;
            out->str_start[id] = i + 1;
            out->str_len[id] = vend - i - 2;
            i = vend;
        } else {
            /* a non-negative JSON integer of at most 18 digits (below 2**62) */
            size_t j = i;
            int64_t v = 0;
            while (j < last && buf[j] >= '0' && buf[j] <= '9' && j - i < 18) {
                v = v * 10 + (buf[j] - '0');
                j++;
            }
            if (j == i || (buf[i] == '0' && j - i > 1)) return 0;
            if (j < last && (buf[j] == '.' || buf[j] == 'e' || buf[j] == 'E' ||
                             (buf[j] >= '0' && buf[j] <= '9')))
                return 0;
            if (id == F_T) out->t = (int)(v > 1 ? 2 : v);
            else if (id == F_S) out->s = v;
            else out->ts = v;
            i = j;
        }
    }
    const unsigned need = (1u << F_H) | (1u << F_P) | (1u << F_U) | (1u << F_A) | (1u << F_K) |
                          (1u << F_T);
    if ((seen & need) != need || out->t > 1 || out->str_len[F_H] == 0) return 0;
    if (!(seen & (1u << F_S))) out->s = 0;
    if (!(seen & (1u << F_TS))) out->ts = 0;
    out->has_fa = (seen >> F_FA) & 1;
    return 1;
}

int mf_scan_node(const uint8_t *buf, size_t len, size_t pos, mf_scan_out *out) {
    memset(out, 0, sizeof(*out));
    size_t i = pos;
    while (i < len && (is_ws(buf[i]) || buf[i] == ',')) i++;
    out->start = i;
    if (i == len) return 0;
    if (buf[i] != '{') return -1;
    /* the matching bracket: strings skipped (a backslash skips the next byte) */
    size_t depth = 0;
    size_t j = i;
    while (j < len) {
        uint8_t c = buf[j];
        if (c == '"') {
            j++;
            while (j < len && buf[j] != '"') j += buf[j] == '\\' ? 2 : 1;
            if (j >= len) return 0;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) break;
        }
        j++;
    }
    if (j >= len) return 0;
    out->end = j + 1;
    out->usual = usual_shape(buf, i, j + 1, out);
    return 1;
}

static int8_t b64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return (int8_t)(c - 'A');
    if (c >= 'a' && c <= 'z') return (int8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (int8_t)(c - '0' + 52);
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long mf_b64url_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap) {
    if (n % 4 == 1) return -1;
    size_t outlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (outlen > cap) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int8_t v = b64_value(src[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

uint32_t mf_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* A JSON string of the attribute grammar at js[i] == '"': no '"' or '\\' inside and no
 * control byte below 0x20 (UTF-8 bytes pass: the caller decodes strictly). Returns the index
 * after the closing quote, or 0. */
static size_t attr_string(const uint8_t *js, size_t i, size_t len) {
    for (size_t j = i + 1; j < len; j++) {
        uint8_t c = js[j];
        if (c == '"') return j + 1;
        if (c < 0x20 || c == '\\') return 0;
    }
    return 0;
}

/* Strict UTF-8 (as Python decodes it): no overlong forms, no surrogates, up to U+10FFFF. */
static int utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return 0;
        if (n - i <= need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

int mf_attr_name(const uint8_t *js, size_t len, size_t *name_start, size_t *name_len,
                 int *members) {
    if (!utf8_ok(js, len)) return 0;
    size_t keys[MF_ATTR_MAX_MEMBERS][2];
    int m = 0, found = 0;
    size_t i = 0;
    while (i < len && is_ws(js[i])) i++;
    if (i >= len || js[i] != '{') return 0;
    i++;
    for (;;) {
        while (i < len && is_ws(js[i])) i++;
        if (i >= len) return 0;
        if (m == 0 && js[i] == '}') return 0; /* an empty object has no name */
        if (m == MF_ATTR_MAX_MEMBERS || js[i] != '"') return 0;
        size_t kend = attr_string(js, i, len);
        if (!kend) return 0;
        size_t ks = i + 1, kl = kend - i - 2;
        for (int x = 0; x < m; x++)
            if (keys[x][1] == kl && memcmp(js + keys[x][0], js + ks, kl) == 0) return 0;
        keys[m][0] = ks;
        keys[m][1] = kl;
        m++;
        i = kend;
        while (i < len && is_ws(js[i])) i++;
        if (i >= len || js[i] != ':') return 0;
        i++;
        while (i < len && is_ws(js[i])) i++;
        if (i >= len) return 0;
        if (js[i] == '"') {
            size_t vend = attr_string(js, i, len);
            if (!vend) return 0;
            if (kl == 1 && js[ks] == 'n') {
                *name_start = i + 1;
                *name_len = vend - i - 2;
                found = 1;
            }
            i = vend;
        } else {
            size_t j = i;
            if (js[j] == '-') j++;
            size_t digits = j;
            while (j < len && js[j] >= '0' && js[j] <= '9') j++;
            if (j == digits || (js[digits] == '0' && j - digits > 1)) return 0;
            if (j < len && (js[j] == '.' || js[j] == 'e' || js[j] == 'E')) return 0;
            i = j;
        }
        while (i < len && is_ws(js[i])) i++;
        if (i >= len) return 0;
        if (js[i] == '}') {
            i++;
            break;
        }
        if (js[i] != ',') return 0;
        i++;
    }
    while (i < len && is_ws(js[i])) i++;
    if (i != len || !found) return 0;
    *members = m;
    return 1;
}
