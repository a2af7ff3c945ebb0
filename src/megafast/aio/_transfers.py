"""AsyncMega's uploads and downloads (methods of AsyncMega), on the threaded engine.

The API commands of a transfer (``u`` before an upload, ``g`` before a download, ``p``
after an upload) go through the client's batcher on the loop, so many transfers started at
once (``asyncio.gather``) share requests. The bytes move in a worker thread through
:func:`megafast.transfer.upload_file` / :func:`~megafast.transfer.download_file` (see
:mod:`._bridge`: progress reaches the loop, cancelling stops the engine within about a
second and keeps resumable state). When the engine needs a fresh URL (a dead upload URL, an
expired download URL), it asks through the loop from its thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import time
from collections.abc import AsyncIterable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .._account.nodeops import encrypt_attrs
from .._account.sources import (
    FileSource,
    checked_g_answer,
    checked_u_answer,
    decrypt_at,
    link_source,
    node_source,
)
from .._account.transfers import dest_dir
from .._tree.nodes import NodeType
from .._wire.codec import FileKey, fold, words_to_bytes
from .._wire.links import parse_link
from ..errors import SourceNotFoundError, ValidationError, WrongKeyError
from ..media._remote import PendingPictures, fileobj_pictures, start_pictures, store_ahead
from ..transfer import download_file, download_to_fileobj, upload_file
from ..transfer._localnames import safe_local_name
from ._bridge import LoopProgress, Progress, call_from_thread, run_in_thread
from ._nodes import Node, NodeRef, handle_of

if TYPE_CHECKING:
    from ._client import AsyncMega

PathArg = str | os.PathLike[str]


# -- uploads -------------------------------------------------------------------------------------
async def _upload(
    m: AsyncMega,
    source: Any,
    size: int | None,
    attrs: dict[str, Any],
    dest: NodeRef | None,
    progress: Progress | None,
    resume_id: str | None,
    pictures: PendingPictures | None = None,
) -> Node:
    """The engine's upload in a worker thread, then the node (with ``pictures`` stored and
    attached when they could be made: they are made on their own threads meanwhile)."""
    from ._ops import _folder, put_node

    parent = await _folder(m, dest)
    loop = asyncio.get_running_loop()
    first_url: list[str] = []
    if size is not None:  # ask for the URL on the loop, batched with other uploads
        first_url.append(checked_u_answer(await m.batcher.call({"a": "u", "s": size})))

    def get_upload_url(n: int) -> str:
        if first_url and size == n:
            return first_url.pop()
        answer = call_from_thread(loop, m.batcher.call({"a": "u", "s": n}))
        return checked_u_answer(answer)

    config = m.config
    if resume_id is None:
        config = dataclasses.replace(config, resume=False)
    reporter = LoopProgress(loop, progress)
    on_key = store_ahead(pictures, _thread_batch(m, loop), m.http)
    result = await run_in_thread(
        m.executor,
        lambda cancel: upload_file(
            m.http,
            get_upload_url,
            source,
            size,
            config=config,
            progress=reporter,
            resume_id=resume_id,
            shared_session=True,
            cancel=cancel,
            on_key=on_key,
        ),
    )
    reporter.flush()
    key = FileKey.unpack(result.key).packed
    item = {"h": result.token, "t": NodeType.FILE.value, "a": encrypt_attrs(attrs, key)}
    if pictures is not None:
        fa = await _store_pictures(m, pictures, words_to_bytes(fold(key)))
        if fa:
            item["fa"] = fa
    return await put_node(m, parent, item, key)


def _thread_batch(
    m: AsyncMega, loop: asyncio.AbstractEventLoop
) -> Callable[[list[dict[str, Any]]], list[Any]]:
    """Commands sent from a worker thread through the client's batcher on ``loop``."""

    def batch(commands: list[dict[str, Any]]) -> list[Any]:
        async def all_of() -> list[Any]:
            return list(await asyncio.gather(*(m.batcher.call(c) for c in commands)))

        return call_from_thread(loop, all_of())

    return batch


async def _store_pictures(m: AsyncMega, pictures: PendingPictures, aes_key: bytes) -> str | None:
    """The new node's ``fa`` (None: not stored): the pictures stored while the file
    uploaded, waited for in a worker thread (or stored now, their ``ufa`` commands through
    the client's batcher)."""
    loop = asyncio.get_running_loop()
    batch = _thread_batch(m, loop)
    return await loop.run_in_executor(m.executor, pictures.store, batch, m.http, aes_key)


def _resume_id(m: AsyncMega, parent: str, name: str, identity: str) -> str:
    """What makes two uploads "the same" (the engine keeps only a digest of it); the same
    fields as the synchronous client's, so either client resumes the other's upload."""
    creds = m._require_login()
    who = creds.user_handle or creds.email or ""
    return "\0".join(("megafast-upload", m.api_url, who, parent, name, identity))


async def upload(
    m: AsyncMega,
    path: PathArg,
    dest: NodeRef | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    resume: bool = True,
    thumbnails: bool | None = None,
) -> Node:
    """Upload the file at ``path`` into ``dest`` (default: the Cloud Drive) as ``name``
    (default: its own name). ``progress(done, total)`` (bytes) is called on the loop (a
    coroutine function's result is run as a task). An interrupted upload of the same
    unchanged file to the same place resumes. ``thumbnails``: an image (or a video, with
    ffmpeg) gets a thumbnail and a preview, made while it uploads (default: on when Pillow
    is installed; ``False``: none); one that cannot be made is logged and skipped."""
    from .._account.transfers import _file_identity
    from ..crypto import fingerprint
    from ._ops import _folder

    m._require_login()
    file = Path(path)
    try:
        st = file.stat()
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {file}: {exc.strerror}") from None
    if not file.is_file():
        raise SourceNotFoundError(f"no such file to upload: {file}")
    name = name or file.name
    stamp = await asyncio.get_running_loop().run_in_executor(
        m.executor, fingerprint, file, int(st.st_mtime)
    )
    parent = await _folder(m, dest)
    resume_id = _resume_id(m, parent, name, _file_identity(file.resolve(), st)) if resume else None
    attrs = {"n": name, "c": stamp}
    pics = start_pictures(file, thumbnails)
    return await _upload(m, file, st.st_size, attrs, parent, progress, resume_id, pics)


async def upload_bytes(
    m: AsyncMega,
    data: bytes | bytearray | memoryview,
    name: str,
    dest: NodeRef | None = None,
    *,
    mtime: float | None = None,
    progress: Progress | None = None,
    thumbnails: bool | None = None,
) -> Node:
    """Upload ``data`` as a file called ``name`` into ``dest``; ``thumbnails`` as for
    :func:`upload`, for an image ``name``."""
    from ..crypto import fingerprint
    from ._ops import _folder

    m._require_login()
    _check_name(name)
    data = bytes(data)
    stamp = int(time.time() if mtime is None else mtime)
    attrs = {"n": name, "c": fingerprint(io.BytesIO(data), stamp)}
    parent = await _folder(m, dest)
    digest = f"bytes:{len(data)}:{hashlib.sha256(data).hexdigest()}"
    resume_id = _resume_id(m, parent, name, digest)
    pics = fileobj_pictures(name, data, thumbnails)
    return await _upload(m, data, len(data), attrs, parent, progress, resume_id, pics)


async def upload_stream(
    m: AsyncMega,
    stream: BinaryIO | AsyncIterable[bytes],
    name: str,
    size: int,
    dest: NodeRef | None = None,
    *,
    progress: Progress | None = None,
) -> Node:
    """Upload ``size`` bytes read from a binary file object or an async iterable of bytes
    (an aiohttp response's ``content.iter_chunked(...)``, for instance) as ``name``. An
    async source is read on the loop while the engine encrypts in its thread."""
    m._require_login()
    _check_name(name)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValidationError("size must be the stream's length in bytes")
    source: Any = stream
    if isinstance(stream, AsyncIterable):
        source = _thread_iter(asyncio.get_running_loop(), stream)
    attrs = {"n": name}
    return await _upload(m, source, size, attrs, dest, progress, None)


def _thread_iter(loop: asyncio.AbstractEventLoop, stream: AsyncIterable[bytes]) -> Iterator[bytes]:
    """A blocking iterator (for the engine's thread) over an async iterable on ``loop``."""
    iterator = stream.__aiter__()

    async def step() -> bytes | None:
        try:
            return bytes(await iterator.__anext__())
        except StopAsyncIteration:
            return None

    while (chunk := call_from_thread(loop, step())) is not None:
        yield chunk


# -- downloads -----------------------------------------------------------------------------------
async def _source(m: AsyncMega, file: NodeRef | str) -> tuple[FileSource, str | None]:
    """The source of a node, a public file link or a link to a file in a public folder,
    and the file's name (None when it comes from the ``g`` answer)."""
    if isinstance(file, str) and ("#" in file or "!" in file):
        link = parse_link(file)
        if link.kind == "file":
            return link_source(link), None
        from .._account.sources import public_root
        from ._ops import _folder_tree

        tree = await _folder_tree(m, link.handle, link.key)
        node = public_root(tree, link)
        return node_source(node, link.handle), tree.name_of(node)
    tree = await m.tree()
    handle = handle_of(file)
    found = tree.nodes.get(handle)
    if found is None:
        from ..errors import NodeNotFoundError

        raise NodeNotFoundError(f"no file with handle {handle!r}")
    return node_source(found), tree.name_of(found)


async def _fetch(m: AsyncMega, source: FileSource) -> dict[str, Any]:
    command = dict(source.command)
    if m.api_url.startswith("https:"):
        command["ssl"] = 2
    if source.folder is None:
        answer = await m.batcher.call(command)
    else:
        answer = await m.api.request(command, folder=source.folder)
    source.answer = checked_g_answer(answer)
    return source.answer


def _url_getter(
    m: AsyncMega, loop: asyncio.AbstractEventLoop, source: FileSource
) -> Callable[[bool], str]:
    def get_url(refresh: bool = False) -> str:
        if refresh:
            call_from_thread(loop, _fetch(m, source))
        return str(source.answer["g"])

    return get_url


async def download(
    m: AsyncMega,
    file: NodeRef | str,
    dest: PathArg | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download a file (a Node, a handle, a public file link, or a link to a file in a
    public folder) into the folder ``dest`` (default: the current one) as ``name``
    (default: its own, made safe); the path written. The target appears only after the
    data's MAC verified; a cancelled or failed download keeps its ``.megafast-part`` state
    and the same call resumes it. A folder of the account goes to :meth:`download_tree`."""
    directory = dest_dir(dest)
    if not isinstance(file, str) or not ("#" in file or "!" in file):
        tree = await m.tree()
        handle = handle_of(file)
        slot = tree.store.slot_of.get(handle)
        if slot is not None and tree.store.types[slot] == NodeType.FOLDER and name is None:
            from ._trees import download_tree

            return await download_tree(m, handle, directory, progress=progress)
    source, known = await _source(m, file)
    data = await _fetch(m, source)
    if source.by_link or known is None:
        known = decrypt_at(data.get("at", ""), source.key).get("n")
    chosen = name or known
    if not isinstance(chosen, str) or not chosen:
        raise WrongKeyError("the file has no name attribute")
    target = directory / safe_local_name(chosen)
    loop = asyncio.get_running_loop()
    reporter = LoopProgress(loop, progress)
    path = await run_in_thread(
        m.executor,
        lambda cancel: download_file(
            m.http,
            _url_getter(m, loop, source),
            source.size,
            source.key,
            target,
            config=m.config,
            progress=reporter,
            resume_id=source.resume_id,
            shared_session=True,
            cancel=cancel,
        ),
    )
    reporter.flush()
    return path


async def download_to(
    m: AsyncMega, file: NodeRef | str, fileobj: BinaryIO, *, progress: Progress | None = None
) -> int:
    """Write a file's plaintext to a binary file object (from a worker thread, in order);
    the bytes written. Verified at the end (IntegrityError on a wrong MAC)."""
    source, _ = await _source(m, file)
    data = await _fetch(m, source)
    if source.by_link:
        decrypt_at(data.get("at", ""), source.key)
    loop = asyncio.get_running_loop()
    reporter = LoopProgress(loop, progress)
    await run_in_thread(
        m.executor,
        lambda cancel: download_to_fileobj(
            m.http,
            _url_getter(m, loop, source),
            source.size,
            source.key,
            fileobj,
            config=m.config,
            progress=reporter,
            shared_session=True,
            cancel=cancel,
        ),
    )
    reporter.flush()
    return source.size


async def download_bytes(
    m: AsyncMega, file: NodeRef | str, *, progress: Progress | None = None
) -> bytes:
    """A file's content in memory (verified)."""
    buffer = io.BytesIO()
    await download_to(m, file, buffer, progress=progress)
    return buffer.getvalue()


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValidationError("name must be a non-empty string without '/'")


def _raise_first(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result
