"""File attributes over the network: storing a new file's pictures, attaching them, and
reading them back in batches.

Storing (MEGA's ``CommandPutFA``): ``{"a":"ufa","s":<bytes>,"ssl":2}`` answers ``{"p": URL}``;
the encrypted attribute is POSTed to that URL, which answers with its 8-byte handle. A new
file carries the handles in its ``p`` (``"fa": "0*<h>/1*<h>"``); an existing one gets them
with ``{"a":"pfa","n":<node>,"fa":"<type>*<h>"}``.

Reading (``CommandGetFA``): ``{"a":"ufa","fah":<one handle>,"ssl":2,"r":1}`` answers the URL
of that handle's cluster; a POST of the wanted handles (8 bytes each, concatenated) answers
the records :func:`~megafast.media._attrs.parse_records` reads. One ``ufa`` per cluster (all
in one API request) and one POST per cluster, however many files.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._wire.codec import b64encode
from ..errors import NotFoundError, UnexpectedAnswerError, ValidationError
from ._attrs import (
    PREVIEW,
    THUMBNAIL,
    decrypt_attr_data,
    encrypt_attr_data,
    find_attr,
    new_node_fa,
    node_aes_key,
    parse_records,
)
from ._pictures import IMAGE_SUFFIXES, available, make_pictures, pictures_from_image, wanted

if TYPE_CHECKING:
    import requests

__all__ = [
    "PendingPictures",
    "attach_attrs",
    "fetch_attrs",
    "fetch_one",
    "fileobj_pictures",
    "pictures_on",
    "start_pictures",
    "store_ahead",
    "store_attrs",
]

logger = logging.getLogger("megafast.media")

#: send commands in one request and return their results (negative numbers for errors)
Batch = Callable[[list[dict[str, Any]]], list[Any]]
_POST_TIMEOUT = 60.0
#: the longest answer to one attribute fetch read (bytes): 1,000 previews of 250 KB fit
MAX_FETCH_ANSWER = 256 * 1024 * 1024
#: threads storing pictures ahead (network waits, no CPU to speak of)
_STORE_THREADS = 8
_pool_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        return _pools[name]


def _executor() -> ThreadPoolExecutor:
    """The pictures' worker threads, shared by every upload (one per core)."""
    return _pool("megafast-pictures", max(1, os.cpu_count() or 1))


def _storers() -> ThreadPoolExecutor:
    """The threads that store pictures while their files upload."""
    return _pool("megafast-pictures-store", _STORE_THREADS)


def _make(
    make: Callable[..., tuple[bytes, bytes] | None], *args: Any
) -> Future[tuple[bytes, bytes] | None]:
    """``make(*args)`` on the pictures' threads, or here when the pool takes no new work
    (interpreter shutdown: a thread still uploading after the main one ended)."""
    try:
        return _executor().submit(make, *args)
    except RuntimeError:
        done: Future[tuple[bytes, bytes] | None] = Future()
        done.set_result(make(*args))  # never raises for a bad file
        return done


def pictures_on(option: object) -> bool:
    """Whether uploads make pictures: ``option`` (``True``/``False``; ``None`` means the
    default, on) and Pillow importable."""
    return option is not False and available()


class PendingPictures:
    """The thumbnail and preview of one file, being made on the pictures' threads while the
    file uploads (or already made); :meth:`store` then encrypts and stores them once the
    file's key is known."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        made: Future[tuple[bytes, bytes] | None] | None = None,
    ) -> None:
        self.name = os.path.basename(os.fspath(path))
        self._made = made if made is not None else _make(make_pictures, path)
        self._ahead: tuple[bytes, Future[str | None]] | None = None

    @classmethod
    def of_image(cls, name: str, data: bytes) -> PendingPictures:
        """The pictures of the image ``data`` (a file named ``name``), made on the
        pictures' threads."""
        return cls(name, _make(pictures_from_image, io.BytesIO(data), name))

    @classmethod
    def made(cls, name: str, made: tuple[bytes, bytes] | None) -> PendingPictures:
        """Pictures made already (``None``: none could be made)."""
        done: Future[tuple[bytes, bytes] | None] = Future()
        done.set_result(made)
        return cls(name, done)

    def store_ahead(self, batch: Batch, http: requests.Session, aes_key: bytes) -> None:
        """Store the pictures under the file's AES key as soon as they are made, on the
        storing threads, while the file uploads (``upload_file``'s ``on_key``); :meth:`store`
        with the same key then returns that outcome. Stored pictures of an upload that fails
        are never attached (the server drops them)."""
        ahead: Future[str | None] = Future()
        self._ahead = (aes_key, ahead)

        def run() -> None:
            try:
                ahead.set_result(self._store(batch, http, aes_key))
            except BaseException as exc:  # TransferCancelled: store() raises it
                ahead.set_exception(exc)

        def schedule(_made: object) -> None:
            try:
                _storers().submit(run)
            except RuntimeError:  # no new pool work (interpreter shutdown): stored here
                run()

        self._made.add_done_callback(schedule)

    def store(self, batch: Batch, http: requests.Session, aes_key: bytes) -> str | None:
        """The ``fa`` for the new node's ``p`` (``"0*<h>/1*<h>"``), or ``None`` when the
        pictures could not be made or stored (logged; the upload goes on without them)."""
        ahead = self._ahead
        if ahead is not None and ahead[0] == aes_key:
            return ahead[1].result()
        return self._store(batch, http, aes_key)

    def _store(self, batch: Batch, http: requests.Session, aes_key: bytes) -> str | None:
        from ..transfer import TransferCancelled

        try:
            made = self._made.result()
            if made is None:
                return None
            handles = store_attrs(batch, http, aes_key, {THUMBNAIL: made[0], PREVIEW: made[1]})
            return new_node_fa(handles) if handles else None
        except TransferCancelled:
            raise
        except Exception as exc:  # a picture never fails the upload
            logger.warning("%s: thumbnail and preview not stored: %s", self.name, exc)
            return None


def store_ahead(
    pictures: PendingPictures | None, batch: Batch, http: requests.Session
) -> Callable[[bytes], None] | None:
    """``upload_file``'s ``on_key`` that stores ``pictures`` while their file uploads
    (``None`` when there are none)."""
    if pictures is None:
        return None
    return lambda aes_key: pictures.store_ahead(batch, http, aes_key)


def start_pictures(path: str | os.PathLike[str], option: object) -> PendingPictures | None:
    """Start making the pictures of the file at ``path`` when uploads make them (``option``,
    see :func:`pictures_on`) and the file is an image (or a video, with ffmpeg)."""
    if not pictures_on(option) or not wanted(path):
        return None
    return PendingPictures(path)


def fileobj_pictures(name: str, source: Any, option: object) -> PendingPictures | None:
    """The pictures of an upload from memory or a file object, when uploads make them and
    ``name`` is an image's (videos need a file for ffmpeg): ``bytes`` are read on the
    pictures' threads while they upload; a seekable file object at its start is read here,
    before it uploads, and put back at its start. Other sources get none (a stream cannot be
    read twice). ``None`` when none are made."""
    if not pictures_on(option) or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return PendingPictures.of_image(name, bytes(source))
    seekable = getattr(source, "seekable", None)
    if not callable(seekable) or not seekable() or source.tell() != 0:
        return None
    try:
        made = pictures_from_image(source, name)
    finally:
        source.seek(0)
    return PendingPictures.made(name, made)


def store_attrs(
    batch: Batch, http: requests.Session, aes_key: bytes, pictures: Mapping[int, bytes]
) -> dict[int, bytes]:
    """Encrypt and store each of ``pictures`` (type -> plaintext): one API request for all
    their upload URLs, then one POST each. Returns type -> 8-byte handle for those stored; a
    refused one is logged and left out."""
    data = {t: encrypt_attr_data(p, aes_key) for t, p in pictures.items()}
    kinds = sorted(data)
    answers = batch([{"a": "ufa", "s": len(data[t]), "ssl": 2} for t in kinds])
    out: dict[int, bytes] = {}
    for kind, answer in zip(kinds, answers, strict=True):
        url = answer.get("p") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            logger.warning("file attribute %d: ufa answered %r, not an upload URL", kind, answer)
            continue
        reply = http.post(url, data=data[kind], timeout=_POST_TIMEOUT)
        body = reply.content
        if reply.status_code != 200 or len(body) != 8:
            logger.warning(
                "file attribute %d: the upload was refused (HTTP %d, %d bytes)",
                kind,
                reply.status_code,
                len(body),
            )
            continue
        out[kind] = body
    return out


def attach_attrs(
    request: Callable[[dict[str, Any]], Any], handle: str, handles: Mapping[int, bytes]
) -> str | None:
    """Attach stored attributes to the existing file ``handle`` (``pfa``, one per type);
    returns the node's new ``fa`` as the server answers it."""
    fa = None
    for kind, h in sorted(handles.items()):
        answer = request({"a": "pfa", "n": handle, "fa": f"{kind}*{b64encode(h)}"})
        fa = answer if isinstance(answer, str) else fa
    return fa


def fetch_attrs(
    batch: Batch,
    http: requests.Session,
    nodes: Iterable[Mapping[str, Any]],
    kind: int,
    timeout: float = _POST_TIMEOUT,
) -> dict[str, bytes]:
    """The attribute ``kind`` (0 thumbnail, 1 preview) of each decrypted file in ``nodes``
    that has one: ``{node handle: plaintext}``. One API request for the URLs of every
    cluster, then one POST per cluster; files without the attribute are left out, and so are
    the ones the server did not return or returned in pieces that are not whole AES blocks
    (as MEGA's SDK does). An answer whose records run past its end raises
    :class:`~megafast.errors.UnexpectedAnswerError`."""
    clusters: dict[int, list[tuple[str, bytes, bytes]]] = {}
    for node in nodes:
        attr = find_attr(node.get("fa"), kind)
        if attr is None:
            continue
        key = node_aes_key(node)
        clusters.setdefault(attr.cluster, []).append((str(node.get("h")), attr.handle, key))
    if not clusters:
        return {}
    order = sorted(clusters)
    commands = [{"a": "ufa", "fah": b64encode(clusters[c][0][1]), "ssl": 2, "r": 1} for c in order]
    out: dict[str, bytes] = {}
    for cluster, answer in zip(order, batch(commands), strict=True):
        url = answer.get("p") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            logger.warning("file attributes of cluster %d: ufa answered %r", cluster, answer)
            continue
        items = clusters[cluster]
        handles = list(dict.fromkeys(h for _, h, _ in items))
        body = _post_capped(http, url, b"".join(handles), timeout)
        records = parse_records(body, handles)
        for node_handle, h, key in items:
            if h not in records:
                continue
            try:
                out[node_handle] = decrypt_attr_data(records[h], key)
            except UnexpectedAnswerError as exc:  # one bad record: that file is left out
                logger.warning("file %s: its attribute was not usable: %s", node_handle, exc)
    return out


def _post_capped(http: requests.Session, url: str, data: bytes, timeout: float) -> bytes:
    """The answer to a fetch POST, read up to :data:`MAX_FETCH_ANSWER` bytes (a hostile
    server cannot fill the memory): :class:`~megafast.errors.UnexpectedAnswerError` beyond."""
    with http.post(url, data=data, timeout=timeout, stream=True) as reply:
        if reply.status_code != 200:
            raise UnexpectedAnswerError(
                f"the file attribute server answered HTTP {reply.status_code}"
            )
        body = bytearray()
        for piece in reply.iter_content(1 << 16):
            body += piece
            if len(body) > MAX_FETCH_ANSWER:
                raise UnexpectedAnswerError(
                    f"the file attribute server's answer is over {MAX_FETCH_ANSWER} bytes"
                )
        return bytes(body)


def fetch_one(
    batch: Batch, http: requests.Session, node: Mapping[str, Any], kind: int, timeout: float
) -> bytes:
    """One file's attribute; :class:`~megafast.errors.NotFoundError` when it has none."""
    what = "thumbnail" if kind == THUMBNAIL else "preview"
    if find_attr(node.get("fa"), kind) is None:
        if node.get("t") != 0:
            raise ValidationError(f"only files have a {what}")
        raise NotFoundError(-9, f"this file has no {what}")
    got = fetch_attrs(batch, http, [node], kind, timeout)
    data = got.get(str(node.get("h")))
    if data is None:
        raise NotFoundError(-9, f"the server did not return this file's {what}")
    return data
