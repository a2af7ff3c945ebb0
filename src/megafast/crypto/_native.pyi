"""Type stub of the native kernel module (Cython over C): the kernel contract.

``_native`` and its pure-Python twin ``_pure`` export the same kernel names with the same
results (docs/DESIGN.md, "Kernel module contract"). Byte arguments accept any C-contiguous
buffer; wrong lengths or types raise ``ValueError``/``TypeError``. Every kernel releases the
GIL while it runs.
"""

from collections.abc import Sequence

from _typeshed import ReadableBuffer, WriteableBuffer

# The AES path in use: "portable", "aesni" or "vaes" (set_kernel changes it).
KERNEL: str
# Tries one hashcash_search call is best given (the SIMD width: 32 with AVX-512, else 4).
HASHCASH_BATCH: int

def available_kernels() -> list[str]: ...
def set_kernel(name: str) -> None: ...
def cpu_features() -> dict[str, bool]: ...

# v1 password key: 65536 AES rounds; pw holds a32 bytes (len % 4 == 0); 16 bytes out.
def prepare_key(pw: ReadableBuffer) -> bytes: ...

# v1 login hash: data (a32 bytes of the lower-cased email) under a 16-byte key; 8 bytes out.
def stringhash(data: ReadableBuffer, key: ReadableBuffer) -> bytes: ...

# Plain AES-128-CTR at any byte offset: dst[i] = src[i] ^ keystream[offset + i].
def ctr_xor_into(
    key: ReadableBuffer,
    nonce: ReadableBuffer,
    offset: int,
    src: ReadableBuffer,
    dst: WriteableBuffer,
) -> None: ...

# Bytes between two MAC marks within a chunk (64 KiB).
MARK: int

# MEGA chunk MACs over plaintext at a 16-byte aligned offset. mac_in: the running MAC of the
# chunk holding offset (None on a chunk boundary); final: the data ends the file. Returns
# (completed chunks as (start offset, 16-byte MAC), running MAC of the open chunk or None).
# marks: a list that gets (file offset, running MAC there), in file order, for each mark the
# data passes: every MARK bytes into a chunk, past its start, where the chunk's MAC goes on.
def mac(
    key: ReadableBuffer,
    nonce: ReadableBuffer,
    offset: int,
    src: ReadableBuffer,
    mac_in: ReadableBuffer | None,
    final: bool,
    marks: list[tuple[int, bytes]] | None = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]: ...

# CTR-decrypt src into dst (may be src), then MAC the plaintext (download).
def decrypt_mac_into(
    key: ReadableBuffer,
    nonce: ReadableBuffer,
    offset: int,
    src: ReadableBuffer,
    dst: WriteableBuffer,
    mac_in: ReadableBuffer | None,
    final: bool,
    marks: list[tuple[int, bytes]] | None = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]: ...

# MAC the plaintext src, then CTR-encrypt it into dst (may be src) (upload).
def mac_encrypt_into(
    key: ReadableBuffer,
    nonce: ReadableBuffer,
    offset: int,
    src: ReadableBuffer,
    dst: WriteableBuffer,
    mac_in: ReadableBuffer | None,
    final: bool,
    marks: list[tuple[int, bytes]] | None = None,
) -> tuple[list[tuple[int, bytes]], bytes | None]: ...

# The 8-byte meta-MAC from the concatenated 16-byte chunk MACs in file order (b"" -> zeros).
def fold_meta_mac(key: ReadableBuffer, chunk_macs: ReadableBuffer) -> bytes: ...

# Many node keys (AES-ECB under kek: one 16-byte key or one per node) and attributes:
# (key or None, attribute JSON bytes after b"MEGA" or None) per node; never raises per node.
def decrypt_nodes(
    kek: ReadableBuffer | Sequence[ReadableBuffer],
    enc_keys: Sequence[ReadableBuffer | None],
    enc_attrs: Sequence[ReadableBuffer | None],
) -> list[tuple[bytes | None, bytes | None]]: ...

# The listing scanner: node objects of MEGA's `f` array in buf from pos (after at least
# limit bytes it stops at the next object's end); the usual ones (plain fields, the key under
# prefix + master kek) decrypted into columns. Returns (end, stop, others, columns): stop 0
# (more text needed), 1 (buf[end] is not an object), 2 (limit reached); others: (start, end)
# spans of the other objects; columns: (handles, parents, owners, types (1 byte each), sizes,
# times (int64 each), keys (32 bytes each), attribute JSON, fa or None, spans (2 int64
# each), names (str when the attributes hold only the name, else None), members (1 byte
# each, 0: attributes not of the simple shape), name CRC-32s (uint32 each, 0 with members 0)).
def scan_nodes(
    buf: ReadableBuffer, pos: int, limit: int, prefix: ReadableBuffer, kek: ReadableBuffer
) -> tuple[
    int,
    int,
    list[tuple[int, int]],
    tuple[
        list[str],
        list[str],
        list[str],
        bytes,
        bytes,
        bytes,
        bytes,
        list[bytes],
        list[str | None],
        bytes,
        list[str | None],
        bytes,
        bytes,
    ],
]: ...

# Smallest n in [start, start + count) whose SHA-256(LE32(n) || token * 262144) starts with a
# big-endian 32-bit value <= threshold, or -1. token: 48 bytes.
def hashcash_search(token: ReadableBuffer, threshold: int, start: int, count: int) -> int: ...

# Test hooks (not part of the contract).
def _vaes_variants() -> list[str]: ...
def _set_vaes_variant(variant: str) -> None: ...
def _hashcash_paths() -> list[str]: ...
def _hashcash_search_path(
    token: ReadableBuffer, threshold: int, start: int, count: int, path: str
) -> int: ...
