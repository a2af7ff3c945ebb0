"""MEGA's cryptography: mega.py's helper names, plus the fast file and node kernels.

Everything mega.py's ``mega.crypto`` offers is here with the same signature and result
(a32 values are tuples of 32-bit unsigned ints), so ``from megafast import crypto`` can replace
``from mega import crypto``. Differences are fixes: MACs are right for empty files and for
files whose last chunk is 1 to 16 bytes; ``prepare_key``/``stringhash`` convert ``str`` the way
MEGA's web client does (UTF-16 code units), which matters for non-ASCII passwords; attributes
are written as compact UTF-8 JSON like MEGA's own clients.

The hot loops run in the native extension when it is built (``BACKEND == "native"``), else in
the pure-Python twin; ``KERNEL`` says which AES path runs.

This module is the facade: the code lives in ``_megapy`` (mega.py's helpers), ``_filecipher``
(``FileCipher``), ``_bulk`` (bulk node decryption), ``_hashcash`` (HTTP 402) and
``_fingerprint`` (attribute ``c``); every public name is re-exported here.
"""

from __future__ import annotations

from typing import Any

from . import _backend
from ._bulk import decrypt_nodes
from ._filecipher import FileCipher
from ._fingerprint import fingerprint
from ._hashcash import check_hashcash, hashcash_threshold, parse_hashcash, solve_hashcash
from ._megapy import (
    A32,
    a32_to_base64,
    a32_to_str,
    aes_cbc_decrypt,
    aes_cbc_decrypt_a32,
    aes_cbc_encrypt,
    aes_cbc_encrypt_a32,
    base64_to_a32,
    base64_url_decode,
    base64_url_encode,
    chunk_bounds,
    decode_mpis,
    decrypt_attr,
    decrypt_key,
    derive_v2,
    encode_mpi,
    encrypt_attr,
    encrypt_key,
    get_chunks,
    make_id,
    modular_inverse,
    mpi_to_int,
    pack_file_key,
    prepare_key,
    random_key,
    rsa_decrypt,
    rsa_decrypt_csid,
    str_to_a32,
    str_to_a32_mega,
    stringhash,
    unpack_file_key,
)

__all__ = [
    "A32",
    "BACKEND",
    "KERNEL",
    "MAC_MARK",
    "FileCipher",
    "a32_to_base64",
    "a32_to_str",
    "aes_cbc_decrypt",
    "aes_cbc_decrypt_a32",
    "aes_cbc_encrypt",
    "aes_cbc_encrypt_a32",
    "base64_to_a32",
    "base64_url_decode",
    "base64_url_encode",
    "check_hashcash",
    "chunk_bounds",
    "cpu_features",
    "decode_mpis",
    "decrypt_attr",
    "decrypt_key",
    "decrypt_nodes",
    "derive_v2",
    "encode_mpi",
    "encrypt_attr",
    "encrypt_key",
    "fingerprint",
    "get_chunks",
    "hashcash_threshold",
    "make_id",
    "modular_inverse",
    "mpi_to_int",
    "parse_hashcash",
    "prepare_key",
    "random_key",
    "rsa_decrypt",
    "rsa_decrypt_csid",
    "solve_hashcash",
    "str_to_a32",
    "str_to_a32_mega",
    "stringhash",
    "unpack_file_key",
    "pack_file_key",
]

BACKEND: str = _backend.BACKEND
#: Bytes between two running MACs a :class:`FileCipher` with ``marks`` keeps in a chunk.
MAC_MARK: int = _backend.kernels.MARK


def __getattr__(name: str) -> Any:
    # KERNEL follows set_kernel() in tests, so it is read from the kernel module each time.
    if name == "KERNEL":
        return _backend.kernels.KERNEL
    raise AttributeError(f"module 'megafast.crypto' has no attribute {name!r}")


def cpu_features() -> dict[str, bool]:
    """CPU features the native backend detected (empty for the pure backend)."""
    return dict(_backend.kernels.cpu_features())
