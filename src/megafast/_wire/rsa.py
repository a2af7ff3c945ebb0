"""MEGA's raw RSA for keys and session ids (no padding scheme: MEGA's own layout).

MEGA encrypts ``payload || random padding`` as a number two bytes shorter than the modulus,
sent as an MPI. :func:`rsa_decrypt_mpi` returns that plaintext (payload first);
:func:`sid_from_csid` is the one routine that turns a login's ``csid`` into the session id;
:func:`rsa_encrypt_key` encrypts a share key for another user's public key.
"""

from __future__ import annotations

import secrets

from .codec import b64_bytes, b64encode

__all__ = ["rsa_decrypt_mpi", "rsa_encrypt_key", "sid_from_csid"]

#: A session id is the first 43 bytes of the decrypted ``csid``.
SID_BYTES = 43


def rsa_decrypt_mpi(data: bytes, privk_plain: bytes) -> bytes:
    """Raw RSA decryption of an MPI with the private key (p, q, d, u as MPIs); the plaintext
    without MEGA's two leading bytes. ``ValueError`` when the key or the number is unusable."""
    from ..crypto import decode_mpis, rsa_decrypt

    p, q, d, u = decode_mpis(privk_plain, 4)
    (c,) = decode_mpis(data, 1)
    n = p * q
    if p < 3 or q < 3 or not 0 < c < n:
        raise ValueError("RSA ciphertext out of range")
    m = rsa_decrypt(c, p, q, d, u)
    full = m.to_bytes((n.bit_length() + 7) // 8, "big")
    if full[1] != 0:  # as MEGA's web client: a plaintext one byte longer than usual
        full = b"\0" + full
    return full[2:]


def sid_from_csid(csid: str | bytes, privk_plain: bytes) -> str:
    """The session id (base64url) from a login answer's ``csid`` (base64url text or its bytes)
    and the decrypted private key. ``ValueError`` when it does not decrypt."""
    raw = b64_bytes(csid) if isinstance(csid, str) else bytes(csid)
    if not raw:
        raise ValueError("the csid is not base64url")
    plain = rsa_decrypt_mpi(raw, privk_plain)
    if len(plain) < SID_BYTES:
        raise ValueError("the csid is too short for a session id")
    return b64encode(plain[:SID_BYTES])


def rsa_encrypt_key(key: bytes, modulus: int, exponent: int) -> bytes:
    """RSA-encrypt a short key for a user's public key (n, e) the way MEGA does: the number
    ``key || random padding``, two bytes shorter than the modulus, raised to ``e``, as an
    MPI. The recipient's :func:`rsa_decrypt_mpi` returns ``key`` first."""
    from ..crypto import encode_mpi

    nbytes = (modulus.bit_length() + 7) // 8
    if nbytes < len(key) + 2 + 8:
        raise ValueError("the RSA modulus is too short for this key")
    m = int.from_bytes(key + secrets.token_bytes(nbytes - 2 - len(key)), "big")
    return encode_mpi(pow(m, exponent, modulus))
