"""Pure-Python twin of the native kernels (see docs/DESIGN.md, "Kernel module contract").

Every function here gives exactly the results of ``megafast.crypto._native``; this module is
the reference the native one is tested against, and the backend used when the extension is
missing or ``MEGAFAST_NO_EXTENSIONS=1``. AES comes from pycryptodome, used in whole-buffer
calls (one CBC call per chunk, CTR into the caller's buffer) so that it stays reasonably fast.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import struct
import threading
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

from Crypto.Cipher import AES

KERNEL = "python"

_START_KEY = bytes.fromhex("93c467e37db0c7a4d1be3f810152cb56")
_ZERO_IV = bytes(16)
_MIB = 1 << 20
_KIB128 = 128 << 10
# Chunk starts below 4608 KiB: 128 KiB * i * (i + 1) / 2 for i = 0..8; then every 1 MiB.
_SMALL_STARTS = tuple(_KIB128 * i * (i + 1) // 2 for i in range(9))
_BIG_START = _SMALL_STARTS[-1]  # 4608 KiB
_HASHCASH_REPEAT = 262144
_MAX_OFFSET = (1 << 64) * 16 - 1  # CTR block index is 64 bits
#: Bytes between two MAC marks within a chunk (a divisor of the smallest chunk, 128 KiB).
MARK = 65536


def available_kernels() -> list[str]:
    return ["python"]


def set_kernel(name: str) -> None:
    if name != "python":
        raise ValueError(f"kernel {name!r} is not available in the pure-Python backend")


def cpu_features() -> dict[str, bool]:
    return {}


# -- argument checks (the same messages the native module gives) --------------------------


def _in(obj: Any, name: str) -> memoryview:
    """A read-only byte view of a C-contiguous buffer."""
    if isinstance(obj, str) or obj is None:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}")
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}") from None
    if not view.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous buffer")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _out(obj: Any, name: str) -> memoryview:
    """A writable byte view of a C-contiguous buffer."""
    view = _in(obj, name)
    if view.readonly:
        raise TypeError(f"{name} must be a writable buffer (bytearray, memoryview of one, ...)")
    return view


def _key16(obj: Any, name: str = "key") -> bytes:
    view = _in(obj, name)
    if len(view) != 16:
        raise ValueError(f"{name} must be 16 bytes, got {len(view)}")
    return bytes(view)


def _nonce8(obj: Any) -> bytes:
    view = _in(obj, "nonce")
    if len(view) != 8:
        raise ValueError(f"nonce must be 8 bytes, got {len(view)}")
    return bytes(view)


def _offset(offset: Any) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    value: int = int.__index__(offset)  # a plain int: a subclass cannot fake the range checks
    if value < 0:
        raise ValueError(f"offset must be >= 0, got {value}")
    if value > _MAX_OFFSET:
        raise OverflowError(f"offset {value} is beyond the 64-bit CTR counter")
    return value


# -- password key and login hash ------------------------------------------------------------


def prepare_key(pw: Any) -> bytes:
    """MEGA's v1 password key: 65536 rounds over the a32 bytes of the password."""
    data = bytes(_in(pw, "pw"))
    if len(data) % 4:
        raise ValueError(f"pw must be a whole number of 32-bit words, got {len(data)} bytes")
    if not data:
        return _START_KEY
    if len(data) % 16:
        data += bytes(16 - len(data) % 16)
    if len(data) == 16:
        # One key: 65536 dependent encryptions are one CBC pass over zero blocks.
        return AES.new(data, AES.MODE_CBC, iv=_START_KEY).encrypt(bytes(16 * 0x10000))[-16:]
    ciphers = [AES.new(data[i : i + 16], AES.MODE_ECB).encrypt for i in range(0, len(data), 16)]
    pkey = _START_KEY
    for _ in range(0x10000):
        for enc in ciphers:
            pkey = enc(pkey)
    return pkey


def stringhash(data: Any, key: Any) -> bytes:
    """MEGA's v1 login hash: words 0 and 2 of AES^16384(xor-folded a32 words of data)."""
    raw = bytes(_in(data, "data"))
    aes_key = _key16(key)
    if len(raw) % 4:
        raise ValueError(f"data must be a whole number of 32-bit words, got {len(raw)} bytes")
    words = [0, 0, 0, 0]
    for i, (w,) in enumerate(struct.iter_unpack(">I", raw)):
        words[i % 4] ^= w
    h = struct.pack(">4I", *words)
    # 16384 dependent encryptions = one CBC pass over zero blocks with IV h.
    out = AES.new(aes_key, AES.MODE_CBC, iv=h).encrypt(bytes(16 * 0x4000))[-16:]
    return out[0:4] + out[8:12]


# -- file content: CTR and chunk MACs ---------------------------------------------------------


def chunk_span(offset: int) -> tuple[int, int]:
    """(start, end) of the MAC chunk that contains byte ``offset``."""
    if offset < _BIG_START:
        for i in range(8, -1, -1):
            if _SMALL_STARTS[i] <= offset:
                return _SMALL_STARTS[i], _SMALL_STARTS[i] + _KIB128 * (i + 1)
    start = _BIG_START + (offset - _BIG_START) // _MIB * _MIB
    return start, start + _MIB


def ctr_xor_into(key: Any, nonce: Any, offset: Any, src: Any, dst: Any) -> None:
    """dst = src XOR the AES-CTR key stream from byte ``offset`` (any alignment)."""
    k, n8, off, s, d = _fused_args(key, nonce, offset, src, dst)
    if off + len(s) > _MAX_OFFSET + 1:
        raise OverflowError("the data runs beyond the 64-bit CTR counter")
    _ctr(k, n8, off, s, d)


def _ctr(key: bytes, nonce: bytes, offset: int, src: memoryview, dst: memoryview) -> None:
    if not len(src):
        return
    block, skip = divmod(offset, 16)
    cipher = AES.new(key, AES.MODE_CTR, nonce=nonce, initial_value=block)
    if skip:
        cipher.encrypt(bytes(skip))
    cipher.encrypt(src, output=dst)


_scratch = threading.local()


def _cbc_last(key: bytes, iv: bytes, data: memoryview) -> bytes:
    """Last block of AES-CBC(key, iv, data): a CBC-MAC chain continued from ``iv``."""
    n = len(data)
    buf = getattr(_scratch, "buf", None)
    if buf is None or len(buf) < n:
        buf = bytearray(max(n, _MIB))
        _scratch.buf = buf
    out = memoryview(buf)[:n]
    AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data, output=out)
    return bytes(out[n - 16 : n])


def _mac_args(offset: int, n: int, mac_in: Any, final: Any) -> bytes | None:
    """Check the MAC preconditions; return the running MAC to continue from (or None)."""
    if offset % 16:
        raise ValueError(f"offset must be a multiple of 16 for MAC work, got {offset}")
    if not final and n % 16:
        raise ValueError(
            f"src must be a whole number of 16-byte blocks unless final, got {n} bytes"
        )
    if offset + n > _MAX_OFFSET + 1:
        raise OverflowError("the data runs beyond the 64-bit CTR counter")
    start, _ = chunk_span(offset)
    if mac_in is None:
        if start != offset:
            raise ValueError(
                f"offset {offset} is inside the MAC chunk starting at {start}: mac_in is needed"
            )
        return None
    running = bytes(_in(mac_in, "mac_in"))
    if len(running) != 16:
        raise ValueError(f"mac_in must be 16 bytes, got {len(running)}")
    if start == offset:
        raise ValueError(f"offset {offset} is a MAC chunk boundary: mac_in must be None")
    return running


def _marks_arg(marks: Any) -> list[tuple[int, bytes]] | None:
    if marks is not None and not isinstance(marks, list):
        raise TypeError(f"marks must be a list or None, not {type(marks).__name__}")
    return marks


def _mac(
    key: bytes,
    nonce: bytes,
    offset: int,
    src: memoryview,
    running: bytes | None,
    final: bool,
    marks: list[tuple[int, bytes]] | None = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]:
    done: list[tuple[int, bytes]] = []
    n = len(src)
    end = offset + n
    pos = offset
    start_iv = nonce + nonce
    if n == 0:
        if final and running is not None:
            done.append((chunk_span(offset)[0], running))
        return done, None if final else running
    while pos < end:
        cstart, cend = chunk_span(pos)
        stop = min(cend, end)
        if marks is not None:  # a step ends on the chunk's next mark
            stop = min(stop, cstart + ((pos - cstart) // MARK + 1) * MARK)
        seg = src[pos - offset : stop - offset]
        if len(seg) % 16:
            seg = memoryview(bytes(seg) + bytes(16 - len(seg) % 16))
        iv = running if running is not None and pos != cstart else start_iv
        running = _cbc_last(key, iv, seg)
        if stop == cend or (final and stop == end):
            done.append((cstart, running))
            running = None
        elif marks is not None and (stop - cstart) % MARK == 0:
            marks.append((stop, running))
        pos = stop
    return done, None if final else running


def mac(
    key: Any, nonce: Any, offset: Any, src: Any, mac_in: Any, final: Any, marks: Any = None
) -> tuple[list[tuple[int, bytes]], bytes | None]:
    """Chunk MACs over plaintext ``src`` at ``offset`` (see DESIGN.md); ``marks``: a list
    that gets (offset, running MAC) at each :data:`MARK` into a chunk."""
    k = _key16(key)
    n8 = _nonce8(nonce)
    off = _offset(offset)
    s = _in(src, "src")
    running = _mac_args(off, len(s), mac_in, final)
    return _mac(k, n8, off, s, running, bool(final), _marks_arg(marks))


def _fused_args(
    key: Any, nonce: Any, offset: Any, src: Any, dst: Any
) -> tuple[bytes, bytes, int, memoryview, memoryview]:
    """The checked arguments of a kernel that writes ``dst`` (CTR and the fused ones)."""
    k = _key16(key)
    n8 = _nonce8(nonce)
    off = _offset(offset)
    s = _in(src, "src")
    d = _out(dst, "dst")
    if len(d) != len(s):
        raise ValueError(f"dst must be as long as src ({len(s)} bytes), got {len(d)}")
    return k, n8, off, s, d


def decrypt_mac_into(
    key: Any,
    nonce: Any,
    offset: Any,
    src: Any,
    dst: Any,
    mac_in: Any,
    final: Any,
    marks: Any = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]:
    """CTR-decrypt ``src`` into ``dst`` and MAC the plaintext (download)."""
    k, n8, off, s, d = _fused_args(key, nonce, offset, src, dst)
    running = _mac_args(off, len(s), mac_in, final)
    out = _marks_arg(marks)
    _ctr(k, n8, off, s, d)
    return _mac(k, n8, off, d, running, bool(final), out)


def mac_encrypt_into(
    key: Any,
    nonce: Any,
    offset: Any,
    src: Any,
    dst: Any,
    mac_in: Any,
    final: Any,
    marks: Any = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]:
    """MAC the plaintext ``src``, then CTR-encrypt it into ``dst`` (upload)."""
    k, n8, off, s, d = _fused_args(key, nonce, offset, src, dst)
    running = _mac_args(off, len(s), mac_in, final)
    result = _mac(k, n8, off, s, running, bool(final), _marks_arg(marks))
    _ctr(k, n8, off, s, d)
    return result


def fold_meta_mac(key: Any, chunk_macs: Any) -> bytes:
    """The 8-byte meta-MAC from the concatenated 16-byte chunk MACs, in file order."""
    k = _key16(key)
    macs = _in(chunk_macs, "chunk_macs")
    if len(macs) % 16:
        raise ValueError(f"chunk_macs must be a multiple of 16 bytes, got {len(macs)}")
    if not len(macs):
        return bytes(8)
    fm = _cbc_last(k, _ZERO_IV, macs)
    a, b, c, d = struct.unpack(">4I", fm)
    return struct.pack(">2I", a ^ b, c ^ d)


# -- bulk node decryption -------------------------------------------------------------------


def decrypt_nodes(
    kek: Any, enc_keys: Sequence[Any], enc_attrs: Sequence[Any]
) -> list[tuple[bytes | None, bytes | None]]:
    """Decrypt many node keys (AES-ECB under ``kek``) and their attributes (see DESIGN.md)."""
    if not isinstance(enc_keys, Sequence) or isinstance(enc_keys, (bytes, str)):
        raise TypeError("enc_keys must be a list of bytes-like objects")
    if not isinstance(enc_attrs, Sequence) or isinstance(enc_attrs, (bytes, str)):
        raise TypeError("enc_attrs must be a list of bytes-like objects")
    n = len(enc_keys)
    if len(enc_attrs) != n:
        raise ValueError(f"enc_keys and enc_attrs differ in length ({n} and {len(enc_attrs)})")
    if isinstance(kek, (list, tuple)):
        if len(kek) != n:
            raise ValueError(f"kek list must have one key per node ({n}), got {len(kek)}")
        keks = [_key16(x, "kek") for x in kek]
    else:
        one = _key16(kek, "kek")
        keks = [one] * n
    ecb_cache: dict[bytes, Any] = {}
    out: list[tuple[bytes | None, bytes | None]] = []
    for i in range(n):
        ek, ea = enc_keys[i], enc_attrs[i]
        if ek is None:
            out.append((None, None))
            continue
        ekv = _in(ek, "enc_keys item")
        if len(ekv) not in (16, 32):
            out.append((None, None))
            continue
        dec = ecb_cache.get(keks[i])
        if dec is None:
            dec = ecb_cache[keks[i]] = AES.new(keks[i], AES.MODE_ECB).decrypt
        key = dec(ekv)
        if len(key) == 32:
            attr_key = bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=True))
        else:
            attr_key = key
        attrs: bytes | None = None
        if ea is not None:
            eav = _in(ea, "enc_attrs item")
            if len(eav) and len(eav) % 16 == 0:
                plain = AES.new(attr_key, AES.MODE_CBC, iv=_ZERO_IV).decrypt(eav)
                if plain.startswith(b'MEGA{"'):
                    attrs = plain[4:].rstrip(b"\0")
        out.append((key, attrs))
    return out


# -- hashcash -------------------------------------------------------------------------------

_token_cache: tuple[bytes, bytes] | None = None
_token_lock = threading.Lock()


def _repeated_token(token: bytes) -> bytes:
    global _token_cache
    with _token_lock:
        if _token_cache is None or _token_cache[0] != token:
            _token_cache = (token, token * _HASHCASH_REPEAT)
        return _token_cache[1]


def hashcash_search(token: Any, threshold: Any, start: Any, count: Any) -> int:
    """Smallest n in [start, start+count) whose hash meets ``threshold``, or -1."""
    tok = bytes(_in(token, "token"))
    if len(tok) != 48:
        raise ValueError(f"token must be 48 bytes, got {len(tok)}")
    for name, value in (("threshold", threshold), ("start", start), ("count", count)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    # plain ints: a subclass cannot fake the range checks
    threshold, start, count = int.__index__(threshold), int.__index__(start), int.__index__(count)
    if not 0 <= threshold <= 0xFFFFFFFF:
        raise ValueError(f"threshold must be in 0..2**32-1, got {threshold}")
    if start < 0 or count < 0 or start + count > 1 << 32:
        raise ValueError("start and count must lie within 0..2**32")
    body = _repeated_token(tok)
    for n in range(start, start + count):
        h = hashlib.sha256(struct.pack("<I", n))
        h.update(body)
        if int.from_bytes(h.digest()[:4], "big") <= threshold:
            return n
    return -1


# -- listing scanner ------------------------------------------------------------------------

_PLAIN = rb"[\x20\x21\x23-\x5b\x5d-\x7e]*"  # printable ASCII but '"' and '\\'
_JSON_WS = rb"[ \t\r\n]*"
_MEMBER = re.compile(
    _JSON_WS
    + rb'"('
    + _PLAIN
    + rb')"'
    + _JSON_WS
    + rb":"
    + _JSON_WS
    + rb'(?:"('
    + _PLAIN
    + rb')"|(0|[1-9][0-9]{0,17})(?![0-9.eE]))'
    + _JSON_WS
    + rb"([,}])"
)
_SKIP = re.compile(rb"[ \t\r\n,]*")
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*(")?|[{}\[\]]', re.S)
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
_STRING_FIELDS = (b"h", b"p", b"u", b"a", b"k", b"fa")
_INT_FIELDS = (b"t", b"s", b"ts")
_NEEDED = {b"h", b"p", b"u", b"a", b"k", b"t"}


def _usual(b: bytes, start: int, end: int) -> dict[bytes, Any] | None:
    """The members of an object of the usual shape (see mf_scan_node), else None."""
    fields: dict[bytes, Any] = {}
    i = start + 1
    if not b[i : end - 1].strip(b" \t\r\n"):
        return None  # an empty object
    while True:
        m = _MEMBER.match(b, i, end)
        if m is None:
            return None
        key, text, number, sep = m.groups()
        if key in fields or (key not in _STRING_FIELDS and key not in _INT_FIELDS):
            return None
        if (key in _STRING_FIELDS) != (text is not None):
            return None
        fields[key] = text if text is not None else int(number)
        i = m.end()
        if sep == b"}":
            if i != end:
                return None
            break
    if not fields.keys() >= _NEEDED or fields[b"t"] > 1 or not fields[b"h"]:
        return None
    return fields


def _scan_one(b: bytes, pos: int) -> tuple[int, int, int, dict[bytes, Any] | None]:
    """(result, start, end, usual fields) like mf_scan_node: 1 object, 0 more text, -1 other."""
    i = _SKIP.match(b, pos).end()  # type: ignore[union-attr]
    if i == len(b):
        return 0, i, 0, None
    if b[i] != 0x7B:  # "{"
        return -1, i, 0, None
    depth = 0
    for m in _BRACKETS.finditer(b, i):
        tok = m.group()
        if tok[0] == 0x22:  # a string
            if m.group(1) is None:
                return 0, i, 0, None
        elif tok in (b"{", b"["):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return 1, i, m.end(), _usual(b, i, m.end())
    return 0, i, 0, None


_ATTR_STRING = rb'"([^"\\\x00-\x1f]*)"'
_ATTR_MEMBER = re.compile(
    _JSON_WS
    + _ATTR_STRING
    + _JSON_WS
    + rb":"
    + _JSON_WS
    + rb"(?:"
    + _ATTR_STRING
    + rb"|-?(?:0|[1-9][0-9]*)(?![0-9.eE]))"
    + _JSON_WS
    + rb"([,}])"
)
_ATTR_MAX_MEMBERS = 16


def _attr_name(js: bytes) -> tuple[str, int] | None:
    """(name, members) of attribute JSON of the simple shape (see mf_attr_name), else None."""
    try:
        js.decode("utf-8")
    except UnicodeDecodeError:
        return None
    i = _WS_ONLY.match(js).end()  # type: ignore[union-attr]
    if js[i : i + 1] != b"{":
        return None
    i += 1
    keys: set[bytes] = set()
    name: bytes | None = None
    while True:
        m = _ATTR_MEMBER.match(js, i)
        if m is None or len(keys) == _ATTR_MAX_MEMBERS or m.group(1) in keys:
            return None
        key, text, sep = m.groups()
        keys.add(key)
        if key == b"n" and text is not None:
            name = text
        i = m.end()
        if sep == b"}":
            break
    if _WS_ONLY.match(js, i).end() != len(js) or name is None:  # type: ignore[union-attr]
        return None
    return name.decode("utf-8"), len(keys)


_WS_ONLY = re.compile(_JSON_WS)


def _b64url(text: bytes) -> bytes | None:
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        return None
    return binascii.a2b_base64(text.translate(_URL_TO_STD) + b"==")


_URL_TO_STD = bytes.maketrans(b"-_", b"+/")


def scan_nodes(
    buf: Any, pos: Any, limit: Any, prefix: Any, kek: Any
) -> tuple[int, int, list[tuple[int, int]], tuple[Any, ...]]:
    """Cut node objects out of the ``f`` array text and decrypt the usual ones (DESIGN.md)."""
    text = bytes(_in(buf, "buf"))
    pre = bytes(_in(prefix, "prefix"))
    master = _key16(kek, "kek")
    if type(pos) is not int or type(limit) is not int:
        raise TypeError("pos and limit must be int")
    if pos < 0 or pos > len(text) or limit < 0:
        raise ValueError(f"pos {pos} outside the text ({len(text)} bytes) or a negative limit")
    lim, first, p, stop = min(limit, len(text)), pos, pos, 0
    found: list[tuple[int, int, dict[bytes, Any] | None]] = []
    while True:
        r, start, end, fields = _scan_one(text, p)
        if r != 1:
            stop = 1 if r == -1 else 0
            if r == -1:
                p = start
            break
        found.append((start, end, fields))
        p = end
        if p - first >= lim:
            stop = 2
            break
    usual: list[int] = []
    enc_keys: list[bytes] = []
    enc_attrs: list[bytes] = []
    for i, (_, _, fields) in enumerate(found):
        if fields is None:
            continue
        k, a = fields[b"k"], fields[b"a"]
        if len(k) <= len(pre) or not k.startswith(pre):
            continue
        alen = len(a) // 4 * 3 + (len(a) % 4 - 1 if len(a) % 4 else 0)
        if alen == 0 or alen % 16 or len(a) % 4 == 1:
            continue
        key = _b64url(k[len(pre) :])
        attrs = _b64url(a)
        if key is None or len(key) != (16 if fields[b"t"] == 1 else 32) or attrs is None:
            continue
        usual.append(i)
        enc_keys.append(key)
        enc_attrs.append(attrs)
    plain = dict(zip(usual, decrypt_nodes(master, enc_keys, enc_attrs), strict=True))
    others: list[tuple[int, int]] = []
    cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [], [], [], [], [])
    (
        handles,
        parents,
        owners,
        types,
        sizes,
        times,
        keys,
        attrs_out,
        fas,
        spans,
        names,
        members,
        hashes,
    ) = cols
    for i, (start, end, fields) in enumerate(found):
        key, js = plain.get(i, (None, None))
        if fields is None or key is None or js is None:
            others.append((start, end))
            continue
        handles.append(fields[b"h"].decode())
        parents.append(fields[b"p"].decode())
        owners.append(fields[b"u"].decode())
        types.append(fields[b"t"])
        sizes.append(fields.get(b"s", 0))
        times.append(fields.get(b"ts", 0))
        simple = _attr_name(js)
        names.append(simple[0] if simple is not None and simple[1] == 1 else None)
        members.append(0 if simple is None else simple[1])
        hashes.append(0 if simple is None else zlib.crc32(simple[0].encode()))
        keys.append(key.ljust(32, b"\0"))
        attrs_out.append(js)
        fas.append(fields[b"fa"].decode() if b"fa" in fields else None)
        spans.extend((start, end))
    columns = (
        handles,
        parents,
        owners,
        bytes(types),
        array("q", sizes).tobytes(),
        array("q", times).tobytes(),
        b"".join(keys),
        attrs_out,
        fas,
        array("q", spans).tobytes(),
        names,
        bytes(members),
        array("I", hashes).tobytes(),
    )
    return p, stop, others, columns
