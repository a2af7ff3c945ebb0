"""The thumbnail and preview methods of :class:`~megafast.Mega` (a mixin it inherits; each
method hands over to :mod:`megafast.media._ops`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from . import _ops

if TYPE_CHECKING:
    from .._account.core import Core
    from ..client import Mega

__all__ = ["MediaMethods"]


class MediaMethods:
    """Thumbnails (200x200 JPEG) and previews (within 1000x1000) of files, as MEGA's apps
    show them. ``node``: a ``(handle, node)`` from :meth:`find`, a node, a handle, or a node
    of :meth:`get_public_folder` (then ``folder`` is that link's public handle)."""

    def _media_core(self) -> Core:
        return cast("Mega", self).core

    def get_thumbnail(self, node: Any, *, folder: str | None = None) -> bytes:
        """The file's thumbnail (JPEG bytes). :class:`~megafast.errors.NotFoundError` when
        it has none."""
        return _ops.get_picture(self._media_core(), node, False, folder)

    def get_preview(self, node: Any, *, folder: str | None = None) -> bytes:
        """The file's preview (JPEG bytes, at most 1000x1000 pixels).
        :class:`~megafast.errors.NotFoundError` when it has none."""
        return _ops.get_picture(self._media_core(), node, True, folder)

    def get_thumbnails(
        self, nodes: Iterable[Any], *, preview: bool = False, folder: str | None = None
    ) -> dict[str, bytes]:
        """The thumbnails (or with ``preview`` the previews) of many files at once:
        ``{handle: JPEG bytes}`` for those that have one. One API request for all, plus one
        POST per attribute cluster (a folder's files usually share one or two)."""
        return _ops.get_pictures(self._media_core(), nodes, preview, folder)

    def add_thumbnails(self, node: Any, source: str | os.PathLike[str]) -> str:
        """Make a thumbnail and a preview from the local image or video ``source`` and attach
        them to the remote file ``node`` (MEGA's ``pfa``); returns the node's new ``fa``.
        :class:`~megafast.errors.ValidationError` when no picture can be made from it."""
        return _ops.add_pictures(self._media_core(), node, source)
