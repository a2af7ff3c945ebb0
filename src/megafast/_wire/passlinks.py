"""Password-protected links (``https://mega.nz/#P!<payload>``), as MEGA's apps make them.

The payload (base64url) is, as MEGA's SDK reads and writes it (``MegaClient::decryptlink`` /
``encryptlink``):

======  =====================================================================
bytes   field
======  =====================================================================
1       algorithm: 1 or 2 (MEGA writes 2)
1       type: 0 a folder, 1 a file
6       the public handle
32      salt
16/32   the link's key (16 for a folder, 32 for a file) XOR ``dk[0:len]``
32      HMAC-SHA256 of everything before it
======  =====================================================================

``dk = PBKDF2-HMAC-SHA512(password as UTF-8, salt, 100000 iterations, 64 bytes)``; the MAC key
is ``dk[32:64]``. Algorithm 2 is ``HMAC(key=dk[32:64], data=payload)``; algorithm 1 (an old web
client bug, still accepted) swaps them: ``HMAC(key=payload, data=dk[32:64])``.

Opening needs only the password: the HMAC is checked before anything else is done, so a wrong
password raises :class:`~megafast.errors.WrongPasswordError` before any request is sent. The
password and the derived key never appear in a message, a log or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from ..errors import LinkError, PasswordRequiredError, WrongPasswordError
from .codec import b64decode, b64encode
from .links import file_link, folder_link, parse_link

__all__ = [
    "ITERATIONS",
    "is_password_link",
    "decrypt_link",
    "encrypt_link",
    "protect",
    "unlock",
]

#: PBKDF2 rounds of MEGA's password links
ITERATIONS = 100_000
_SALT = 32
_MAC = 32
_HEAD = 8  # alg, type, public handle
_P_RE = re.compile(
    r"^(?:(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz)?/?#P!(?P<payload>[A-Za-z0-9_,=+/-]*)/?$",
    re.I,
)


def is_password_link(url: object) -> bool:
    """True when ``url`` is a ``#P!`` link (well formed or not)."""
    return isinstance(url, str) and "#P!" in url.strip().replace(" ", "")


def _derive(password: str, salt: bytes) -> bytes:
    if not isinstance(password, str) or not password:
        raise LinkError("the password of a #P! link must be a non-empty str")
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, ITERATIONS, 64)


def _mac(alg: int, mac_key: bytes, data: bytes) -> bytes:
    if alg == 1:  # the legacy web client's argument order
        return hmac.digest(data, mac_key, "sha256")
    return hmac.digest(mac_key, data, "sha256")


def _payload(url: str) -> bytes:
    text = url.strip().replace(" ", "") if isinstance(url, str) else ""
    m = _P_RE.match(text)
    if not m or not m.group("payload"):
        raise LinkError("malformed password-protected (#P!) link")
    return b64decode(m.group("payload"))


def decrypt_link(url: str, password: str, base: str = "https://mega.nz") -> str:
    """The plain link (``/file/H#K`` or ``/folder/H#K``) behind the ``#P!`` link ``url``.

    Raises :class:`~megafast.errors.LinkError` for a payload of the wrong length, an unknown
    algorithm or type, and :class:`~megafast.errors.WrongPasswordError` when the HMAC does not
    match (a wrong password or a damaged link). Costs one PBKDF2 (100,000 rounds of SHA-512).
    """
    raw = _payload(url)
    if len(raw) < 2:
        raise LinkError("the #P! link is too short")
    alg, kind = raw[0], raw[1]
    if alg not in (1, 2):
        raise LinkError(f"the #P! link uses algorithm {alg}, which is not known (1 or 2)")
    if kind not in (0, 1):
        raise LinkError(f"the #P! link names neither a file nor a folder (type {kind})")
    keylen = 32 if kind == 1 else 16
    want = _HEAD + _SALT + keylen + _MAC
    if len(raw) != want:
        what = "file" if kind == 1 else "folder"
        raise LinkError(f"a #P! {what} link has {want} bytes, this one has {len(raw)}")
    body, tag = raw[:-_MAC], raw[-_MAC:]
    salt = raw[_HEAD : _HEAD + _SALT]
    dk = _derive(password, salt)
    if not hmac.compare_digest(_mac(alg, dk[32:64], body), tag):
        raise WrongPasswordError("wrong password for this #P! link (or the link is damaged)")
    enc = raw[_HEAD + _SALT : _HEAD + _SALT + keylen]
    key = bytes(a ^ b for a, b in zip(enc, dk, strict=False))
    handle = b64encode(raw[2:8])
    return file_link(handle, key, base) if kind == 1 else folder_link(handle, key, base)


def encrypt_link(
    url: str,
    password: str,
    *,
    base: str = "https://mega.nz",
    alg: int = 2,
    salt: bytes | None = None,
) -> str:
    """A ``#P!`` link opening the plain file or folder link ``url`` with ``password``
    (``salt``: 32 bytes, fresh random ones by default; ``alg`` 2 as MEGA writes, or 1)."""
    link = parse_link(url)
    if link.child is not None:
        raise LinkError("a link to a node inside a folder cannot be password-protected")
    if alg not in (1, 2):
        raise LinkError("the algorithm of a #P! link is 1 or 2")
    salt = secrets.token_bytes(_SALT) if salt is None else bytes(salt)
    if len(salt) != _SALT:
        raise LinkError("the salt of a #P! link is 32 bytes")
    dk = _derive(password, salt)
    handle = b64decode(link.handle)
    kind = 1 if link.kind == "file" else 0
    enc = bytes(a ^ b for a, b in zip(link.key, dk, strict=False))
    body = bytes((alg, kind)) + handle + salt + enc
    return f"{base}/#P!{b64encode(body + _mac(alg, dk[32:64], body))}"


def unlock(url: str, password: str | None) -> str:
    """``url`` ready for the link parser: a ``#P!`` link decrypted with ``password``
    (:class:`~megafast.errors.PasswordRequiredError` without one), any other link as given."""
    if not is_password_link(url):
        return url
    if password is None:
        raise PasswordRequiredError("this link is password-protected (#P!): give its password")
    return decrypt_link(url, password)


def protect(link: str, password: str | None) -> str:
    """``link`` (a plain file or folder link) as a ``#P!`` link with ``password``, on the
    same site; ``link`` itself when ``password`` is None."""
    if password is None:
        return link
    m = re.match(r"^(.*?)/(?:file/|folder/|#)", link)
    return encrypt_link(link, password, base=m.group(1) if m else "https://mega.nz")
