"""What :class:`~megafast.Mega` does with thumbnails and previews: read them (one node or a
batch), and give an existing file pictures made from a local copy (``pfa``).

Each function takes the account's core (:class:`~megafast._account.core.Core`) first; the
client's methods are one-line hand-overs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ._attrs import PREVIEW, THUMBNAIL, node_aes_key
from ._pictures import make_pictures
from ._remote import Batch, attach_attrs, fetch_attrs, fetch_one, store_attrs

if TYPE_CHECKING:
    from .._account.core import Core

__all__ = ["get_picture", "get_pictures", "add_pictures", "kind_of"]


def kind_of(preview: bool) -> int:
    """The attribute type: 1 (preview) or 0 (thumbnail)."""
    return PREVIEW if preview else THUMBNAIL


def _batch(core: Core, folder: str | None) -> Batch:
    """Commands in one request through the core (a public folder's one by one: ``request``
    is what carries ``&n=``; a folder rarely spans two clusters)."""

    def send(commands: list[dict[str, Any]]) -> list[Any]:
        if folder is None:
            return core.batch(commands)
        return [core.request(command, folder=folder) for command in commands]

    return send


def _node(core: Core, ref: Any) -> Mapping[str, Any]:
    """A decrypted node: a node dict that carries its key (as :meth:`Mega.get_public_folder`
    returns them) as it is, anything else through the account's tree."""
    if isinstance(ref, Mapping) and "k" in ref and "h" in ref:
        return ref
    if isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[1], Mapping) and "k" in ref[1]:
        return ref[1]
    return core.node(ref, "file")


def get_picture(core: Core, node: Any, preview: bool, folder: str | None = None) -> bytes:
    """:meth:`Mega.get_thumbnail` / :meth:`Mega.get_preview`."""
    found = _node(core, node)
    return fetch_one(_batch(core, folder), core.http, found, kind_of(preview), core.timeout)


def get_pictures(
    core: Core, nodes: Iterable[Any], preview: bool, folder: str | None = None
) -> dict[str, bytes]:
    """:meth:`Mega.get_thumbnails`: ``{handle: JPEG}`` for the files that have one."""
    found = [_node(core, n) for n in nodes]
    return fetch_attrs(_batch(core, folder), core.http, found, kind_of(preview), core.timeout)


def add_pictures(core: Core, node: Any, path: str | os.PathLike[str]) -> str:
    """:meth:`Mega.add_thumbnails`: make the pictures of the local file ``path`` and attach
    them to the remote file ``node`` with ``pfa``; returns the node's new ``fa``."""
    found = core.node(node, "file")
    key = node_aes_key(found)
    made = make_pictures(path)
    if made is None:
        raise ValidationError(f"no thumbnail can be made from {os.fspath(path)!r} (see the log)")
    handles = store_attrs(
        _batch(core, None), core.http, key, {THUMBNAIL: made[0], PREVIEW: made[1]}
    )
    if len(handles) != 2:
        raise ValidationError("the server did not store the pictures (see the log)")
    fa = attach_attrs(core.request, str(found["h"]), handles)
    tree = core.loaded_tree
    if fa is not None and tree is not None:
        tree.set_extra(str(found["h"]), "fa", fa)
    return fa or ""
