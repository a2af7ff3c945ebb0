"""Parsing and building MEGA public links (every format in PROTOCOL.md).

Accepted forms (host ``mega.nz`` or ``mega.co.nz``, with or without ``www.``/scheme):

- files: ``/file/<H>#<K>``, ``/embed/<H>#<K>``, legacy ``/#!<H>!<K>``;
- folders: ``/folder/<H>#<K>``, legacy ``/#F!<H>!<K>``;
- a node inside a folder: ``/folder/<H>#<K>/file/<H2>``, ``/folder/<H>#<K>/folder/<H2>``,
  legacy ``/#F!<H>!<K>!<H2>`` (or ``?<H2>``).

``K`` is the packed 8-word file key (32 bytes) for files and the 4-word folder key (16 bytes)
for folders. A link without a key raises :class:`IncompleteLinkError`; anything else that does
not parse raises :class:`LinkError`. Both are :class:`ValueError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import IncompleteLinkError, LinkError, PasswordRequiredError
from .codec import b64decode, b64encode, bytes_to_words
from .redact import redact_link

__all__ = ["PublicLink", "parse_link", "file_link", "folder_link", "b64decode", "b64encode"]

_HANDLE = r"[A-Za-z0-9_-]{8}"
_KEY = r"[A-Za-z0-9_,=+-]*"
_HANDLE_RE = re.compile(rf"^{_HANDLE}$")

# path + fragment after the host, e.g. "/file/H#K" or "/#!H!K"
_NEW_RE = re.compile(
    rf"^/(?P<kind>file|folder|embed)/(?P<h>{_HANDLE})"
    rf"(?:[#!](?P<k>{_KEY}))?"
    rf"(?:/(?P<subkind>file|folder)/(?P<sub>{_HANDLE}))?/?$"
)
_LEGACY_FILE_RE = re.compile(rf"^/?#!(?P<h>{_HANDLE})(?:!(?P<k>{_KEY}))?$")
_LEGACY_FOLDER_RE = re.compile(
    rf"^/?#F!(?P<h>{_HANDLE})(?:!(?P<k>{_KEY}))?(?:[!?](?P<sub>{_HANDLE}))?$"
)
_HOST_RE = re.compile(r"^(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz(?P<rest>[/#].*)$", re.I)


@dataclass(frozen=True)
class PublicLink:
    """A parsed public link.

    ``kind`` is ``"file"`` or ``"folder"`` (the object the handle names); ``handle`` the public
    handle; ``key`` the key as raw bytes (32 for files, 16 for folders); ``child`` the handle of
    a node inside a folder link (or ``None``) and ``child_kind`` ``"file"``, ``"folder"`` or
    ``None`` when the legacy form does not say.
    """

    kind: str
    handle: str
    key: bytes = field(repr=False)  # a link's key never shows in repr()
    child: str | None = None
    child_kind: str | None = None

    @property
    def key_b64(self) -> str:
        """The key in base64url, as it appears in links."""
        return b64encode(self.key)

    def key_a32(self) -> tuple[int, ...]:
        """The key as big-endian 32-bit words (8 for files, 4 for folders)."""
        return bytes_to_words(self.key)


def parse_link(url: str) -> PublicLink:
    """Parse a MEGA public file or folder link (see the module docstring for the forms)."""
    if not isinstance(url, str):
        raise LinkError(f"a link must be a str, not {type(url).__name__}")
    text = url.strip().replace(" ", "")
    host = _HOST_RE.match(text)
    rest = host.group("rest") if host else text
    m = _NEW_RE.match(rest)
    if m:
        kind = "file" if m.group("kind") in ("file", "embed") else "folder"
        handle, key_text = m.group("h"), m.group("k")
        child, child_kind = m.group("sub"), m.group("subkind")
        if child and kind != "folder":
            raise LinkError(f"malformed MEGA link: {redact_link(url)}")
    else:
        m = _LEGACY_FILE_RE.match(rest)
        if m:
            kind, handle, key_text, child, child_kind = (
                "file",
                m.group("h"),
                m.group("k"),
                None,
                None,
            )
        else:
            m = _LEGACY_FOLDER_RE.match(rest)
            if not m:
                if rest.lstrip("/").startswith("#P!"):
                    raise PasswordRequiredError(
                        "this link is password-protected (#P!): open it with its password"
                    )
                raise LinkError(f"malformed MEGA link: {redact_link(url)}")
            kind, handle, key_text = "folder", m.group("h"), m.group("k")
            child, child_kind = m.group("sub"), None
    if not key_text:
        raise IncompleteLinkError(f"the link has no key (EINCOMPLETE): {redact_link(url)}")
    key = b64decode(key_text)
    want = 32 if kind == "file" else 16
    if len(key) != want:
        raise LinkError(
            f"the key of this {kind} link has {len(key)} bytes instead of {want}: {redact_link(url)}"
        )
    return PublicLink(kind, handle, key, child, child_kind)


def is_handle(text: object) -> bool:
    """True when ``text`` looks like an 8-character node or public handle."""
    return isinstance(text, str) and bool(_HANDLE_RE.match(text))


def file_link(handle: str, key: bytes, base: str = "https://mega.nz", legacy: bool = False) -> str:
    """Build a public file link from a public handle and the 32-byte packed key."""
    if legacy:
        return f"{base}/#!{handle}!{b64encode(key)}"
    return f"{base}/file/{handle}#{b64encode(key)}"


def folder_link(
    handle: str, key: bytes, base: str = "https://mega.nz", legacy: bool = False
) -> str:
    """Build a public folder link from a public handle and the 16-byte folder (share) key."""
    if legacy:
        return f"{base}/#F!{handle}!{b64encode(key)}"
    return f"{base}/folder/{handle}#{b64encode(key)}"
