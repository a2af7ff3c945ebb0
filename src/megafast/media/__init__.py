"""Thumbnails and previews (MEGA's file attributes 0 and 1): made on upload, read back in
batches. See docs/MEDIA.md.

:mod:`._attrs` is the wire format (encryption, ``fa`` strings, fetch records),
:mod:`._pictures` makes the JPEGs (Pillow, ffmpeg for videos), :mod:`._remote` stores and
fetches them, :mod:`._ops` is what :class:`~megafast.Mega` calls.
"""

from __future__ import annotations

from ._attrs import (
    PREVIEW,
    THUMBNAIL,
    FileAttr,
    decrypt_attr_data,
    encrypt_attr_data,
    parse_fa,
    parse_records,
)
from ._pictures import available, make_pictures

__all__ = [
    "PREVIEW",
    "THUMBNAIL",
    "FileAttr",
    "available",
    "decrypt_attr_data",
    "encrypt_attr_data",
    "make_pictures",
    "parse_fa",
    "parse_records",
]
