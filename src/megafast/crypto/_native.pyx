# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native kernels of megafast.crypto (see docs/DESIGN.md, "Kernel module contract").

Arguments are checked here with the GIL held, with the same rules and messages as the
pure-Python twin ``megafast.crypto._pure``; the C kernels in ``csrc/`` then run inside
``with nogil``. Buffers are taken through the buffer protocol (any C-contiguous buffer, any
item format, like ``memoryview(x).cast("B")``); outputs must be writable.
"""

from collections.abc import Sequence as _Sequence
import os as _os

from cpython.buffer cimport PyBUF_FULL_RO, PyBuffer_IsContiguous, PyBuffer_Release, PyObject_GetBuffer
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdlib cimport realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy, memset

cdef extern from "mfcrypto.h" nogil:
    ctypedef struct mf_aes_key:
        pass

    ctypedef struct mf_kernel:
        const char *name

    ctypedef struct mf_done:
        uint64_t start
        uint8_t mac[16]

    ctypedef struct mf_cpu_features:
        int aes, pclmulqdq, ssse3, sse41, avx, avx2, vaes, vpclmulqdq, avx512f, avx512vl
        int avx512bw, sha_ni, os_avx, os_avx512

    ctypedef struct mf_node:
        const uint8_t *kek
        const uint8_t *enc_key
        size_t enc_key_len
        const uint8_t *enc_attr
        size_t enc_attr_len
        uint8_t *key_out
        uint8_t *attr_out
        int key_len
        long attr_json_len

    int MF_MODE_MAC, MF_MODE_DEC, MF_MODE_ENC

    const mf_cpu_features *mf_cpu()
    const mf_kernel mf_kernel_portable
    void mf_portable_init()
    const mf_kernel *mf_x86_kernel(const char *name)
    uint64_t mf_chunk_start_blk(uint64_t blk)
    size_t mf_count_pieces(uint64_t blk, size_t len)
    size_t mf_chunk_macs(const mf_kernel *kern, const uint8_t *key, const uint8_t *nonce,
                         int mode, uint64_t blk, const uint8_t *src, uint8_t *dst, size_t len,
                         const uint8_t *mac_in, int final, mf_done *done, uint8_t *mac_out,
                         int *has_out, uint64_t mark_blk, mf_done *marks, size_t *nmarks)
    void mf_fold_meta_mac(const mf_kernel *kern, const uint8_t *key, const uint8_t *macs,
                          size_t nmacs, uint8_t *out)
    int mf_prepare_key(const mf_kernel *kern, const uint8_t *pw, size_t len, uint8_t *out)
    void mf_stringhash(const mf_kernel *kern, const uint8_t *data, size_t len,
                       const uint8_t *key, uint8_t *out)
    void mf_ctr_xor(const mf_kernel *kern, const uint8_t *key, const uint8_t *nonce,
                    uint64_t blk, unsigned skip, const uint8_t *src, uint8_t *dst, size_t len)
    void mf_decrypt_nodes(const mf_kernel *kern, mf_node *nodes, size_t n)
    int mf_sha_ni_available()
    int mf_hashcash_avx512_available()
    int MF_HASH_PORTABLE, MF_HASH_SHA_NI, MF_HASH_AVX512
    int64_t mf_hashcash_search(const uint8_t *token, uint32_t threshold, uint64_t start,
                               uint64_t count, int impl)
    void mf_sha256(const uint8_t *data, size_t len, uint8_t *out, int use_sha_ni)

    ctypedef struct mf_scan_out:
        size_t start, end
        int usual
        size_t str_start[6]
        size_t str_len[6]
        int t
        int has_fa
        int64_t s, ts

    int mf_scan_node(const uint8_t *buf, size_t len, size_t pos, mf_scan_out *out)
    long mf_b64url_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
    int mf_attr_name(const uint8_t *js, size_t len, size_t *name_start, size_t *name_len,
                     int *members)
    uint32_t mf_crc32(const uint8_t *data, size_t n)


mf_portable_init()

_MAX_OFFSET = (1 << 64) * 16 - 1  # CTR block index is 64 bits
# Bytes between two MAC marks within a chunk (a divisor of the smallest chunk, 128 KiB).
MARK = 65536

cdef const mf_kernel *_kern = &mf_kernel_portable


cdef str _vaes_variant = "vaes"  # or "vaes-avx2" / "vaes-avx512" (tests)


cdef const mf_kernel *_lookup(str name):
    if name == "portable":
        return &mf_kernel_portable
    if name == "aesni":
        return mf_x86_kernel(b"aesni")
    if name == "vaes":
        return mf_x86_kernel(_vaes_variant.encode())
    return NULL


def _vaes_variants():
    """VAES code variants this CPU can run: "avx512" (32 registers), "avx2" (for tests)."""
    return [v for v in ("avx512", "avx2") if mf_x86_kernel(f"vaes-{v}".encode()) != NULL]


def _set_vaes_variant(variant):
    """Make the "vaes" kernel use one code variant ("avx512", "avx2") or the best ("auto")."""
    global _vaes_variant, _kern
    if variant != "auto" and variant not in _vaes_variants():
        raise ValueError(f"VAES variant {variant!r} is not available")
    _vaes_variant = "vaes" if variant == "auto" else f"vaes-{variant}"
    if KERNEL == "vaes":
        _kern = _lookup("vaes")


def available_kernels():
    """Kernels this build and CPU can run, slowest first."""
    return [name for name in ("portable", "aesni", "vaes") if _lookup(name) != NULL]


_kernels = available_kernels()
KERNEL = _kernels[len(_kernels) - 1]
_env_kernel = _os.environ.get("MEGAFAST_KERNEL", "").strip()
if _env_kernel in available_kernels():
    KERNEL = _env_kernel
_kern = _lookup(KERNEL)


def set_kernel(name):
    """Force one kernel ("portable", "aesni", "vaes"); ValueError if it cannot run here."""
    global _kern, KERNEL
    if not isinstance(name, str) or name not in available_kernels():
        raise ValueError(
            f"kernel {name!r} is not available (available: {', '.join(available_kernels())})"
        )
    _kern = _lookup(name)
    KERNEL = name


def cpu_features():
    """CPU features found by CPUID (and enabled by the OS)."""
    cdef const mf_cpu_features *f = mf_cpu()
    return {
        "aes": bool(f.aes),
        "pclmulqdq": bool(f.pclmulqdq),
        "ssse3": bool(f.ssse3),
        "sse4_1": bool(f.sse41),
        "avx": bool(f.avx),
        "avx2": bool(f.avx2),
        "vaes": bool(f.vaes),
        "vpclmulqdq": bool(f.vpclmulqdq),
        "avx512f": bool(f.avx512f),
        "avx512vl": bool(f.avx512vl),
        "avx512bw": bool(f.avx512bw),
        "sha_ni": bool(f.sha_ni),
    }


# -- buffers --------------------------------------------------------------------------------

cdef class _View:
    """A held buffer (released when the object goes away, also on exceptions)."""
    cdef Py_buffer view
    cdef bint held
    cdef const uint8_t *ptr
    cdef size_t n

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)
            self.held = False


cdef bint _c_contiguous(Py_buffer *v):
    """memoryview(x).c_contiguous, exactly (an empty strided 1-D view is not contiguous)."""
    if v.ndim == 1 and v.strides != NULL:
        return v.shape[0] == 1 or v.strides[0] == v.itemsize
    return PyBuffer_IsContiguous(v, c'C')


cdef _View _in(object obj, str name):
    """A read-only byte view of a C-contiguous buffer."""
    cdef _View v = _View.__new__(_View)
    if obj is None or isinstance(obj, str):
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}")
    try:
        PyObject_GetBuffer(obj, &v.view, PyBUF_FULL_RO)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}") from None
    v.held = True
    if not _c_contiguous(&v.view):
        raise ValueError(f"{name} must be a C-contiguous buffer")
    v.ptr = <const uint8_t *>v.view.buf
    v.n = <size_t>v.view.len
    return v


cdef _View _out(object obj, str name):
    """A writable byte view of a C-contiguous buffer."""
    cdef _View v = _in(obj, name)
    if v.view.readonly:
        raise TypeError(f"{name} must be a writable buffer (bytearray, memoryview of one, ...)")
    return v


cdef int _key16(object obj, uint8_t *out, str name="key") except -1:
    cdef _View v = _in(obj, name)
    if v.n != 16:
        raise ValueError(f"{name} must be 16 bytes, got {v.n}")
    memcpy(out, v.ptr, 16)
    return 0


cdef int _nonce8(object obj, uint8_t *out) except -1:
    cdef _View v = _in(obj, "nonce")
    if v.n != 8:
        raise ValueError(f"nonce must be 8 bytes, got {v.n}")
    memcpy(out, v.ptr, 8)
    return 0


cdef object _offset(object offset):
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    offset = int.__index__(offset)  # a plain int: a subclass cannot fake the range checks
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if offset > _MAX_OFFSET:
        raise OverflowError(f"offset {offset} is beyond the 64-bit CTR counter")
    return offset


# -- password key and login hash ------------------------------------------------------------

def prepare_key(pw):
    """MEGA's v1 password key: 65536 rounds over the a32 bytes of the password (16 bytes out)."""
    cdef _View v = _in(pw, "pw")
    cdef uint8_t out[16]
    cdef const mf_kernel *k = _kern
    cdef int rc
    if v.n % 4:
        raise ValueError(f"pw must be a whole number of 32-bit words, got {v.n} bytes")
    with nogil:
        rc = mf_prepare_key(k, v.ptr, v.n, out)
    if rc != 0:
        raise MemoryError()
    return PyBytes_FromStringAndSize(<char *>out, 16)


def stringhash(data, key):
    """MEGA's v1 login hash: words 0 and 2 of AES^16384(xor-folded a32 words); 8 bytes."""
    cdef _View v = _in(data, "data")
    cdef uint8_t k16[16]
    cdef uint8_t out[8]
    cdef const mf_kernel *k = _kern
    _key16(key, k16)
    if v.n % 4:
        raise ValueError(f"data must be a whole number of 32-bit words, got {v.n} bytes")
    with nogil:
        mf_stringhash(k, v.ptr, v.n, k16, out)
    return PyBytes_FromStringAndSize(<char *>out, 8)


# -- file content: CTR and chunk MACs ---------------------------------------------------------

def ctr_xor_into(key, nonce, offset, src, dst):
    """dst = src XOR the AES-CTR key stream from byte ``offset`` (any alignment)."""
    cdef uint8_t k16[16]
    cdef uint8_t n8[8]
    cdef const mf_kernel *k = _kern
    _key16(key, k16)
    _nonce8(nonce, n8)
    off = _offset(offset)
    cdef _View s = _in(src, "src")
    cdef _View d = _out(dst, "dst")
    if d.n != s.n:
        raise ValueError(f"dst must be as long as src ({s.n} bytes), got {d.n}")
    if off + s.n > _MAX_OFFSET + 1:
        raise OverflowError("the data runs beyond the 64-bit CTR counter")
    cdef uint64_t blk = off >> 4
    cdef unsigned skip = off & 15
    with nogil:
        mf_ctr_xor(k, k16, n8, blk, skip, s.ptr, <uint8_t *>d.ptr, s.n)


cdef object _mac_work(int mode, object key, object nonce, object offset, object src, object dst,
                      object mac_in, object final, object marks):
    cdef uint8_t k16[16]
    cdef uint8_t n8[8]
    cdef uint8_t running[16]
    cdef uint8_t mac_out[16]
    cdef const uint8_t *mac_in_ptr = NULL
    cdef const mf_kernel *k = _kern
    cdef _View s, d = None, mv
    cdef uint8_t *dptr = NULL
    cdef bint fin
    cdef int has_out = 0
    cdef size_t ndone, npieces, i, nmarks = 0
    cdef mf_done *done
    cdef mf_done *mk = NULL
    cdef uint64_t blk, mark_blk = 0

    _key16(key, k16)
    _nonce8(nonce, n8)
    off = _offset(offset)
    s = _in(src, "src")
    if mode != MF_MODE_MAC:
        d = _out(dst, "dst")
        if d.n != s.n:
            raise ValueError(f"dst must be as long as src ({s.n} bytes), got {d.n}")
        dptr = <uint8_t *>d.ptr
    # The same checks, in the same order, as _pure._mac_args.
    if off % 16:
        raise ValueError(f"offset must be a multiple of 16 for MAC work, got {off}")
    fin = final
    if not fin and s.n % 16:
        raise ValueError(
            f"src must be a whole number of 16-byte blocks unless final, got {s.n} bytes"
        )
    if off + s.n > _MAX_OFFSET + 1:
        raise OverflowError("the data runs beyond the 64-bit CTR counter")
    blk = off >> 4
    start = mf_chunk_start_blk(blk)
    if mac_in is None:
        if start != blk:
            raise ValueError(
                f"offset {off} is inside the MAC chunk starting at {start * 16}: mac_in is needed"
            )
    else:
        mv = _in(mac_in, "mac_in")
        if mv.n != 16:
            raise ValueError(f"mac_in must be 16 bytes, got {mv.n}")
        if start == blk:
            raise ValueError(f"offset {off} is a MAC chunk boundary: mac_in must be None")
        memcpy(running, mv.ptr, 16)
        mac_in_ptr = running

    if marks is not None and not isinstance(marks, list):
        raise TypeError(f"marks must be a list or None, not {type(marks).__name__}")
    npieces = mf_count_pieces(blk, s.n)
    done = <mf_done *>malloc(npieces * sizeof(mf_done))
    if done == NULL:
        raise MemoryError()
    try:
        if marks is not None:
            mark_blk = MARK // 16
            mk = <mf_done *>malloc((s.n // MARK + 1) * sizeof(mf_done))
            if mk == NULL:
                raise MemoryError()
        with nogil:
            ndone = mf_chunk_macs(k, k16, n8, mode, blk, s.ptr, dptr, s.n, mac_in_ptr, fin,
                                  done, mac_out, &has_out, mark_blk, mk, &nmarks)
        result = [
            ((<object>done[i].start) * 16, PyBytes_FromStringAndSize(<char *>done[i].mac, 16))
            for i in range(ndone)
        ]
        if nmarks:
            marks.extend(sorted(
                ((<object>mk[i].start) * 16, PyBytes_FromStringAndSize(<char *>mk[i].mac, 16))
                for i in range(nmarks)
            ))
    finally:
        free(done)
        free(mk)
    if has_out:
        return result, PyBytes_FromStringAndSize(<char *>mac_out, 16)
    return result, None


def mac(key, nonce, offset, src, mac_in, final, marks=None):
    """Chunk MACs over plaintext ``src`` at ``offset``: (done, mac_out), see DESIGN.md."""
    return _mac_work(MF_MODE_MAC, key, nonce, offset, src, None, mac_in, final, marks)


def decrypt_mac_into(key, nonce, offset, src, dst, mac_in, final, marks=None):
    """CTR-decrypt ``src`` into ``dst`` and MAC the plaintext (download): (done, mac_out)."""
    return _mac_work(MF_MODE_DEC, key, nonce, offset, src, dst, mac_in, final, marks)


def mac_encrypt_into(key, nonce, offset, src, dst, mac_in, final, marks=None):
    """MAC the plaintext ``src``, then CTR-encrypt it into ``dst`` (upload): (done, mac_out)."""
    return _mac_work(MF_MODE_ENC, key, nonce, offset, src, dst, mac_in, final, marks)


def fold_meta_mac(key, chunk_macs):
    """The 8-byte meta-MAC from the concatenated 16-byte chunk MACs, in file order."""
    cdef uint8_t k16[16]
    cdef uint8_t out[8]
    cdef const mf_kernel *k = _kern
    _key16(key, k16)
    cdef _View m = _in(chunk_macs, "chunk_macs")
    if m.n % 16:
        raise ValueError(f"chunk_macs must be a multiple of 16 bytes, got {m.n}")
    with nogil:
        mf_fold_meta_mac(k, k16, m.ptr, m.n // 16, out)
    return PyBytes_FromStringAndSize(<char *>out, 8)


# -- bulk node decryption -------------------------------------------------------------------

cdef int _item(object obj, str name, Py_buffer *views, size_t *nviews,
               const uint8_t **ptr, size_t *n) except -1:
    """Pointer and length of one list item; exact bytes need no buffer."""
    if type(obj) is bytes:
        ptr[0] = <const uint8_t *>PyBytes_AS_STRING(obj)
        n[0] = <size_t>PyBytes_GET_SIZE(obj)
        return 0
    if isinstance(obj, str):
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}")
    cdef Py_buffer *view = &views[nviews[0]]
    try:
        PyObject_GetBuffer(obj, view, PyBUF_FULL_RO)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}") from None
    nviews[0] += 1
    if not _c_contiguous(view):
        raise ValueError(f"{name} must be a C-contiguous buffer")
    ptr[0] = <const uint8_t *>view.buf
    n[0] = <size_t>view.len
    return 0


cdef object _snapshot(object seq):
    """The items of ``seq`` in a new sequence owned by the caller (no length hint: len() of a
    sequence may lie)."""
    if type(seq) is list or type(seq) is tuple:
        return tuple(seq)
    return [item for item in seq]


def decrypt_nodes(kek, enc_keys, enc_attrs):
    """Decrypt many node keys (AES-ECB under ``kek``) and their attributes (see DESIGN.md).

    Returns [(key | None, json_bytes | None)], one per node.
    """
    if not isinstance(enc_keys, _Sequence) or isinstance(enc_keys, (bytes, str)):
        raise TypeError("enc_keys must be a list of bytes-like objects")
    if not isinstance(enc_attrs, _Sequence) or isinstance(enc_attrs, (bytes, str)):
        raise TypeError("enc_attrs must be a list of bytes-like objects")
    cdef Py_ssize_t n = len(enc_keys)
    if len(enc_attrs) != n:
        raise ValueError(f"enc_keys and enc_attrs differ in length ({n} and {len(enc_attrs)})")
    cdef uint8_t one_kek[16]
    cdef uint8_t *keks = NULL
    cdef bint per_node = isinstance(kek, (list, tuple))
    cdef Py_ssize_t i
    if per_node and len(kek) != n:
        raise ValueError(f"kek list must have one key per node ({n}), got {len(kek)}")
    # Snapshots: the copies own every item while the GIL is released below (another thread
    # may change the caller's lists meanwhile), and their true lengths bound every index and
    # allocation (the len() of a sequence may claim more items than it yields).
    keys_seq = _snapshot(enc_keys)
    attrs_seq = _snapshot(enc_attrs)
    kek_seq = _snapshot(kek) if per_node else ()
    if len(keys_seq) < n or len(attrs_seq) < n or (per_node and len(kek_seq) < n):
        raise IndexError("enc_keys, enc_attrs or kek holds fewer items than its len() says")
    cdef mf_node *nodes = <mf_node *>malloc((n if n else 1) * sizeof(mf_node))
    cdef Py_buffer *views = <Py_buffer *>malloc((2 * n if n else 1) * sizeof(Py_buffer))
    cdef size_t nviews = 0, attr_total = 0, j
    cdef uint8_t *key_arena = NULL
    cdef uint8_t *attr_arena = NULL
    cdef const mf_kernel *k = _kern
    cdef mf_node *nd
    try:
        if nodes == NULL or views == NULL:
            raise MemoryError()
        if per_node:
            keks = <uint8_t *>malloc((n if n else 1) * 16)
            if keks == NULL:
                raise MemoryError()
            for i in range(n):
                _key16(kek_seq[i], keks + 16 * i, "kek")
        else:
            _key16(kek, one_kek, "kek")
        for i in range(n):
            nd = &nodes[i]
            nd.kek = keks + 16 * i if per_node else one_kek
            nd.enc_key = NULL
            nd.enc_key_len = 0
            nd.enc_attr = NULL
            nd.enc_attr_len = 0
            ek = keys_seq[i]
            if ek is None:
                continue
            _item(ek, "enc_keys item", views, &nviews, &nd.enc_key, &nd.enc_key_len)
            if nd.enc_key_len != 16 and nd.enc_key_len != 32:
                continue
            ea = attrs_seq[i]
            if ea is None:
                continue
            _item(ea, "enc_attrs item", views, &nviews, &nd.enc_attr, &nd.enc_attr_len)
            if nd.enc_attr_len % 16 == 0:
                attr_total += nd.enc_attr_len
        key_arena = <uint8_t *>malloc((n if n else 1) * 32)
        attr_arena = <uint8_t *>malloc(attr_total if attr_total else 1)
        if key_arena == NULL or attr_arena == NULL:
            raise MemoryError()
        j = 0
        for i in range(n):
            nd = &nodes[i]
            nd.key_out = key_arena + 32 * i
            nd.attr_out = attr_arena + j
            if nd.enc_attr_len % 16:
                nd.enc_attr_len = 0  # undecryptable attributes: None
            j += nd.enc_attr_len
        with nogil:
            mf_decrypt_nodes(k, nodes, <size_t>n)
        out = []
        for i in range(n):
            nd = &nodes[i]
            if nd.key_len == 0:
                out.append((None, None))
            elif nd.attr_json_len < 0:
                out.append((PyBytes_FromStringAndSize(<char *>nd.key_out, nd.key_len), None))
            else:
                out.append((
                    PyBytes_FromStringAndSize(<char *>nd.key_out, nd.key_len),
                    PyBytes_FromStringAndSize(<char *>nd.attr_out + 4, nd.attr_json_len),
                ))
        return out
    finally:
        for j in range(nviews):
            PyBuffer_Release(&views[j])
        if key_arena != NULL:
            memset(key_arena, 0, (n if n else 1) * 32)
        if attr_arena != NULL:
            memset(attr_arena, 0, attr_total if attr_total else 1)
        if keks != NULL:
            memset(keks, 0, (n if n else 1) * 16)
        free(key_arena)
        free(attr_arena)
        free(keks)
        free(views)
        free(nodes)


# -- listing scanner -----------------------------------------------------------------------

cdef enum:
    _S_H = 0
    _S_P = 1
    _S_U = 2
    _S_A = 3
    _S_K = 4
    _S_FA = 5


cdef inline object _ascii(const uint8_t *buf, mf_scan_out *o, int field):
    return PyUnicode_DecodeASCII(<const char *>buf + o.str_start[field], o.str_len[field], NULL)


cdef inline bint _same(const uint8_t *buf, mf_scan_out *a, mf_scan_out *b, int field) nogil:
    return a.str_len[field] == b.str_len[field] and memcmp(
        buf + a.str_start[field], buf + b.str_start[field], a.str_len[field]) == 0


def scan_nodes(buf, pos, limit, prefix, kek):
    """Cut node objects out of the ``f`` array text and decrypt the usual ones (DESIGN.md)."""
    cdef _View text = _in(buf, "buf")
    cdef _View pre = _in(prefix, "prefix")
    cdef uint8_t k16[16]
    _key16(kek, k16, "kek")
    if type(pos) is not int or type(limit) is not int:
        raise TypeError("pos and limit must be int")
    if pos < 0 or pos > <object>text.n or limit < 0:
        raise ValueError(f"pos {pos} outside the text ({text.n} bytes) or a negative limit")
    cdef size_t p = <size_t>pos, lim = <size_t>min(limit, text.n), first = p, cap = 0, n = 0
    cdef size_t nusual = 0, attr_total = 0, j, i, alen
    cdef int stop = 0, r = 0
    cdef long got
    cdef mf_scan_out *outs = NULL
    cdef mf_scan_out *grown
    cdef mf_scan_out *o
    cdef mf_node *nodes = NULL
    cdef uint8_t *enc_keys = NULL
    cdef uint8_t *enc_attrs = NULL
    cdef uint8_t *keys_out = NULL
    cdef uint8_t *attrs_out = NULL
    cdef const uint8_t *b = text.ptr
    cdef size_t blen = text.n, plen = pre.n
    cdef int *want = NULL
    cdef const mf_kernel *kern = _kern
    cdef mf_scan_out *prev = NULL
    cdef mf_node *nd
    cdef uint8_t *packed = NULL
    cdef uint8_t *p_types
    cdef uint8_t *p_members
    cdef uint8_t *p_keys
    cdef int64_t *p_sizes
    cdef int64_t *p_times
    cdef int64_t *p_spans
    cdef uint32_t *p_hashes
    cdef size_t g = 0
    cdef size_t name_at = 0, name_len = 0
    cdef int nmembers = 0
    try:
        with nogil:
            while True:
                if n == cap:
                    cap = cap * 2 if cap else 1024
                    grown = <mf_scan_out *>realloc(outs, cap * sizeof(mf_scan_out))
                    if grown == NULL:
                        r = -2
                        break
                    outs = grown
                r = mf_scan_node(b, blen, p, &outs[n])
                if r != 1:
                    stop = 1 if r == -1 else 0
                    if r == -1:
                        p = outs[n].start
                    break
                p = outs[n].end
                n += 1
                if p - first >= lim:
                    stop = 2
                    break
        if r == -2:
            raise MemoryError()
        nodes = <mf_node *>malloc((n if n else 1) * sizeof(mf_node))
        enc_keys = <uint8_t *>malloc((n if n else 1) * 32)
        keys_out = <uint8_t *>malloc((n if n else 1) * 32)
        want = <int *>malloc((n if n else 1) * sizeof(int))
        if nodes == NULL or enc_keys == NULL or keys_out == NULL or want == NULL:
            raise MemoryError()
        with nogil:
            for i in range(n):
                o = &outs[i]
                want[i] = 0
                if not o.usual:
                    continue
                alen = o.str_len[_S_A] // 4 * 3 + (o.str_len[_S_A] % 4 - 1 if o.str_len[_S_A] % 4 else 0)
                if (o.str_len[_S_K] <= plen or memcmp(b + o.str_start[_S_K], pre.ptr, plen) != 0
                        or alen == 0 or alen % 16 or o.str_len[_S_A] % 4 == 1):
                    continue
                got = mf_b64url_decode(b + o.str_start[_S_K] + plen, o.str_len[_S_K] - plen,
                                       enc_keys + 32 * i, 32)
                if got != (16 if o.t == 1 else 32):
                    continue
                want[i] = 1
                attr_total += alen
            enc_attrs = <uint8_t *>malloc(attr_total if attr_total else 1)
            attrs_out = <uint8_t *>malloc(attr_total if attr_total else 1)
            if enc_attrs != NULL and attrs_out != NULL:
                j = 0
                for i in range(n):
                    if not want[i]:
                        continue
                    o = &outs[i]
                    got = mf_b64url_decode(b + o.str_start[_S_A], o.str_len[_S_A],
                                           enc_attrs + j, attr_total - j)
                    if got <= 0:
                        want[i] = 0
                        continue
                    nodes[nusual].kek = k16
                    nodes[nusual].enc_key = enc_keys + 32 * i
                    nodes[nusual].enc_key_len = 16 if o.t == 1 else 32
                    nodes[nusual].enc_attr = enc_attrs + j
                    nodes[nusual].enc_attr_len = <size_t>got
                    nodes[nusual].key_out = keys_out + 32 * nusual
                    nodes[nusual].attr_out = attrs_out + j
                    j += <size_t>got
                    nusual += 1
                mf_decrypt_nodes(kern, nodes, nusual)
        if enc_attrs == NULL or attrs_out == NULL:
            raise MemoryError()
        others = []
        handles, parents, owners, attrs, fas, names = [], [], [], [], [], []
        # packed columns, g entries each: sizes, times (8 bytes), spans (16), keys (32), types,
        # members (1); the 8-byte ones first, so they are aligned
        packed = <uint8_t *>malloc((nusual if nusual else 1) * 70)
        if packed == NULL:
            raise MemoryError()
        p_sizes = <int64_t *>packed
        p_times = p_sizes + nusual
        p_spans = p_times + nusual
        p_keys = <uint8_t *>(p_spans + 2 * nusual)
        p_hashes = <uint32_t *>(p_keys + 32 * nusual)
        p_types = <uint8_t *>(p_hashes + nusual)
        p_members = p_types + nusual
        last_owner = last_parent = None
        prev = NULL
        j = 0
        for i in range(n):
            o = &outs[i]
            if want[i]:
                nd = &nodes[j]
                j += 1
                if nd.key_len != 0 and nd.attr_json_len >= 0:
                    handles.append(_ascii(b, o, _S_H))
                    if prev == NULL or not _same(b, o, prev, _S_P):
                        last_parent = _ascii(b, o, _S_P)
                    if prev == NULL or not _same(b, o, prev, _S_U):
                        last_owner = _ascii(b, o, _S_U)
                    prev = o
                    parents.append(last_parent)
                    owners.append(last_owner)
                    p_types[g] = <uint8_t>o.t
                    p_sizes[g] = o.s
                    p_times[g] = o.ts
                    p_spans[2 * g] = <int64_t>o.start
                    p_spans[2 * g + 1] = <int64_t>o.end
                    memcpy(p_keys + 32 * g, nd.key_out, nd.key_len)
                    memset(p_keys + 32 * g + nd.key_len, 0, 32 - nd.key_len)
                    attrs.append(PyBytes_FromStringAndSize(<char *>nd.attr_out + 4, nd.attr_json_len))
                    if mf_attr_name(nd.attr_out + 4, <size_t>nd.attr_json_len, &name_at,
                                    &name_len, &nmembers):
                        names.append(PyUnicode_DecodeUTF8(
                            <const char *>nd.attr_out + 4 + name_at, name_len, NULL)
                            if nmembers == 1 else None)
                        p_members[g] = <uint8_t>nmembers
                        p_hashes[g] = mf_crc32(nd.attr_out + 4 + name_at, name_len)
                    else:
                        names.append(None)
                        p_members[g] = 0
                        p_hashes[g] = 0
                    fas.append(_ascii(b, o, _S_FA) if o.has_fa else None)
                    g += 1
                    continue
            others.append((o.start, o.end))
        columns = (
            handles, parents, owners,
            PyBytes_FromStringAndSize(<char *>p_types, g),
            PyBytes_FromStringAndSize(<char *>p_sizes, 8 * g),
            PyBytes_FromStringAndSize(<char *>p_times, 8 * g),
            PyBytes_FromStringAndSize(<char *>p_keys, 32 * g),
            attrs, fas,
            PyBytes_FromStringAndSize(<char *>p_spans, 16 * g),
            names,
            PyBytes_FromStringAndSize(<char *>p_members, g),
            PyBytes_FromStringAndSize(<char *>p_hashes, 4 * g),
        )
        return p, stop, others, columns
    finally:
        if keys_out != NULL:
            memset(keys_out, 0, (n if n else 1) * 32)
        if attrs_out != NULL:
            memset(attrs_out, 0, attr_total if attr_total else 1)
        if packed != NULL:
            memset(packed, 0, (nusual if nusual else 1) * 70)
        free(packed)
        free(outs)
        free(nodes)
        free(enc_keys)
        free(enc_attrs)
        free(keys_out)
        free(attrs_out)
        free(want)


# -- hashcash -------------------------------------------------------------------------------

# Tries per hashcash_search call that keep the fastest path fully busy (AVX-512 runs 32 tries
# at once; SHA-NI 4). Not part of the kernel contract: callers may use it when present.
HASHCASH_BATCH = 32 if mf_hashcash_avx512_available() else 4


def _hashcash_paths():
    """SHA-256 paths for hashcash this CPU can run (tests force each one)."""
    paths = ["portable"]
    if mf_sha_ni_available():
        paths.append("sha_ni")
    if mf_hashcash_avx512_available():
        paths.append("avx512")
    return paths


cdef int _hashcash_default():
    # The portable AES kernel also means portable SHA-256 (no special instructions at all).
    if _kern == &mf_kernel_portable:
        return MF_HASH_PORTABLE
    if mf_hashcash_avx512_available():
        return MF_HASH_AVX512
    if mf_sha_ni_available():
        return MF_HASH_SHA_NI
    return MF_HASH_PORTABLE


def hashcash_search(token, threshold, start, count):
    """Smallest n in [start, start+count) with BE32(SHA-256(LE32(n) || token*262144)[:4])
    <= threshold, or -1. Releases the GIL. With AVX-512, 16 tries run at once: give count
    as a multiple of 16 for full speed."""
    return _hashcash(token, threshold, start, count, _hashcash_default())


def _hashcash_search_path(token, threshold, start, count, path):
    """hashcash_search on one SHA-256 path ("portable", "sha_ni", "avx512"); for tests."""
    if path not in _hashcash_paths():
        raise ValueError(f"hashcash path {path!r} is not available")
    impl = {"portable": MF_HASH_PORTABLE, "sha_ni": MF_HASH_SHA_NI, "avx512": MF_HASH_AVX512}
    return _hashcash(token, threshold, start, count, impl[path])


cdef object _hashcash(object token, object threshold, object start, object count, int impl):
    cdef _View t = _in(token, "token")
    if t.n != 48:
        raise ValueError(f"token must be 48 bytes, got {t.n}")
    for name, value in (("threshold", threshold), ("start", start), ("count", count)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    # plain ints: a subclass cannot fake the range checks
    threshold, start, count = int.__index__(threshold), int.__index__(start), int.__index__(count)
    if not 0 <= threshold <= 0xFFFFFFFF:
        raise ValueError(f"threshold must be in 0..2**32-1, got {threshold}")
    if start < 0 or count < 0 or start + count > 1 << 32:
        raise ValueError("start and count must lie within 0..2**32")
    cdef uint8_t tok[48]
    cdef uint32_t th = threshold
    cdef uint64_t st = start, cn = count
    cdef int64_t r
    memcpy(tok, t.ptr, 48)
    with nogil:
        r = mf_hashcash_search(tok, th, st, cn, impl)
    return r


def _sha256(data, use_sha_ni=True):
    """SHA-256 of data with the hashcash code path (for tests)."""
    cdef _View v = _in(data, "data")
    cdef uint8_t out[32]
    cdef int ni = bool(use_sha_ni) and mf_sha_ni_available()
    with nogil:
        mf_sha256(v.ptr, v.n, out, ni)
    return PyBytes_FromStringAndSize(<char *>out, 32)
