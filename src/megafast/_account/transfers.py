"""Transfer orchestration: which files go where, on top of the engine in :mod:`megafast.transfer`.

Downloads: one file from a :class:`~megafast._account.sources.FileSource` to a path, and folder trees
(the account's or a public folder's) to local folders with safe local names. Uploads: a path,
bytes or a file object to a new node (with the attributes, the fingerprint and the identity
an interrupted upload resumes by), and whole local folder trees. Each transfer runs on a
private HTTP session the engine clones from the client's pooled one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import stat
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._tree.nodes import NodeTree, NodeType
from .._wire.codec import FileKey, fold, words_to_bytes
from .._wire.links import parse_link
from ..errors import (
    DestinationError,
    LinkError,
    SourceNotFoundError,
    ValidationError,
    WrongKeyError,
)
from ..media._remote import PendingPictures, fileobj_pictures, start_pictures, store_ahead
from ..transfer._localnames import safe_local_name
from . import nodeops as _nodeops
from . import sources as _sources

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..transfer import (
        ProgressCallback,
        TransferConfig,
        TransferManager,
        TransferResult,
        TransferSubscriber,
    )
    from .core import Core
    from .nodeops import NodeRef

PathArg = str | os.PathLike[str] | None

#: files in flight at once for Mega's folder methods: a small file spends most of its time
#: waiting for round trips, so more of them than connections of one big file
TREE_WORKERS = 32

logger = logging.getLogger("megafast.transfers")

# the concrete Path class (PosixPath, WindowsPath): before 3.12, Path itself cannot be subclassed
_PATH_BASE: type[Path] = Path if sys.version_info >= (3, 12) else type(Path())


def _config(core: Core, config: TransferConfig | None) -> TransferConfig | None:
    return config if config is not None else core.options.get("transfer")


def dest_dir(dest_path: PathArg) -> Path:
    """An existing, writable local directory (default: the current one)."""
    directory = Path(dest_path) if dest_path not in (None, "") else Path.cwd()
    if directory.exists() and not directory.is_dir():
        raise DestinationError(f"the destination is not a directory: {directory}")
    if not directory.exists():
        raise DestinationError(f"the destination directory does not exist: {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DestinationError(f"the destination directory is not writable: {directory}")
    return directory


# -- downloads ---------------------------------------------------------------------------------
def download_source(
    core: Core,
    source: _sources.FileSource,
    target: Path,
    *,
    name_from_at: bool,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
) -> Path:
    """Download ``source`` to ``target`` (into the directory ``target`` under the file's own
    name when ``name_from_at``); an interrupted download resumes by ``source.resume_id``."""
    from ..transfer import download_file

    data = _sources.fetch(core, source)
    if name_from_at:
        name = _sources.decrypt_at(data.get("at", ""), source.key).get("n")
        if not isinstance(name, str):
            raise WrongKeyError("the file has no name attribute")
        target = target / safe_local_name(name)
    return download_file(
        core.http,
        _sources.url_getter(core, source),
        source.size,
        source.key,
        target,
        config=_config(core, config),
        progress=progress,
        resume_id=source.resume_id,
    )


def download(
    core: Core,
    file: NodeRef | None,
    dest_path: PathArg,
    dest_filename: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    out: TransferResult | None = None,
    watchers: Iterable[TransferSubscriber] = (),
) -> Path:
    """:meth:`Mega.download`."""
    node = core.node(file, "file")
    directory = dest_dir(dest_path)
    if node.get("undecryptable") or "key" not in node:
        raise WrongKeyError("this node cannot be decrypted, so it cannot be downloaded")
    tree = core.tree()
    target = directory / safe_local_name(dest_filename or tree.name_of(node) or node["h"])
    if node.get("t") == NodeType.FOLDER:
        return download_tree(core, tree, node, target, None, progress, config, out, watchers)
    if node.get("t") != NodeType.FILE:
        raise ValidationError("only files and folders can be downloaded")
    source = _sources.node_source(node)
    return download_source(
        core, source, target, name_from_at=False, progress=progress, config=config
    )


def download_url(
    core: Core,
    url: str,
    dest_path: PathArg,
    dest_filename: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    out: TransferResult | None = None,
    watchers: Iterable[TransferSubscriber] = (),
) -> Path:
    """:meth:`Mega.download_url`: a file link, or a folder link (or a node inside one)."""
    link = parse_link(url)
    directory = dest_dir(dest_path)
    if link.kind != "file":
        return download_folder_url(
            core, url, directory, dest_filename, progress, config, out, watchers
        )
    # without dest_filename the name comes from the file's own attributes
    return download_source(
        core,
        _sources.link_source(link),
        directory / safe_local_name(dest_filename) if dest_filename else directory,
        name_from_at=not dest_filename,
        progress=progress,
        config=config,
    )


def download_folder_url(
    core: Core,
    url: str,
    dest_path: PathArg,
    dest_filename: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    out: TransferResult | None = None,
    watchers: Iterable[TransferSubscriber] = (),
) -> Path:
    """:meth:`Mega.download_folder_url`."""
    link = parse_link(url)
    if link.kind != "folder":
        raise LinkError("not a folder link")
    directory = dest_dir(dest_path)
    tree = _sources.public_folder_tree(core, link)
    root = _sources.public_root(tree, link)
    target = directory / safe_local_name(dest_filename or tree.name_of(root) or root["h"])
    if root.get("undecryptable") or "key" not in root:
        raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
    if root.get("t") == NodeType.FILE:
        source = _sources.node_source(root, link.handle)
        return download_source(
            core, source, target, name_from_at=False, progress=progress, config=config
        )
    return download_tree(core, tree, root, target, link.handle, progress, config, out, watchers)


def _tree_manager(
    core: Core,
    folder: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    watchers: Iterable[TransferSubscriber] = (),
) -> TransferManager:
    """A :class:`~megafast.transfer.TransferManager` for one tree, reporting whole-tree bytes
    to ``progress`` and every file's events to ``watchers``."""
    from ..transfer import BytesProgress, TransferManager

    subscribers: list[TransferSubscriber] = list(watchers)
    if progress is not None:
        subscribers.append(BytesProgress(progress))
    return TransferManager(
        core,
        workers=TREE_WORKERS,
        config=_config(core, config),
        folder=folder,
        subscribers=subscribers,
    )


class DownloadedFolder(_PATH_BASE):  # type: ignore[misc,valid-type]
    """The local folder a folder download wrote (a :class:`~pathlib.Path`). ``renamed`` maps
    the remote path of each entry that got another local name (names colliding in one
    folder: ``name (1).ext``...) to its local path, both relative to this folder."""

    renamed: Mapping[str, str] = MappingProxyType({})


def download_tree(
    core: Core,
    tree: NodeTree,
    root: dict[str, Any],
    target: Path,
    folder: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    out: TransferResult | None = None,
    watchers: Iterable[TransferSubscriber] = (),
) -> Path:
    """Download the folder ``root`` of ``tree`` (of the public folder ``folder``, or None)
    to ``target`` through a :class:`~megafast.transfer.TransferManager` (many files at once,
    batched ``g``, complete files skipped on a re-run); ``progress`` covers all bytes. Names
    that collide in one folder get distinct local names (:func:`megafast.transfer._localnames.unique_names`,
    listed in the returned folder's ``renamed``)."""
    from .downloadjobs import download_tree as run_tree

    with _tree_manager(core, folder, progress, config, watchers) as manager:
        result = run_tree(manager, tree, root, target, result=out)
    renamed = _collisions(result.renamed)
    for remote, local_rel in renamed.items():
        logger.warning("%s: the name is taken in its folder; saved as %s", remote, local_rel)
    result.raise_for_failures()  # after every other file was transferred
    folder_path = DownloadedFolder(target)
    folder_path.renamed = MappingProxyType(renamed)
    return folder_path


def _collisions(renamed: list[tuple[str, str]]) -> dict[str, str]:
    """The entries of a tree download's ``renamed`` (remote path, local path) whose name was
    taken in its folder, not only made safe (``a/b`` -> ``a_b``)."""
    taken: dict[str, str] = {}
    for remote, local in renamed:
        head, _, name = local.rpartition("/")
        raw = remote[len(head) + 1 :] if head else remote
        if name != safe_local_name(raw):
            taken[remote] = local
    return taken


def download_to_fileobj(
    core: Core,
    file: NodeRef | str,
    fileobj: Any,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
) -> int:
    """:meth:`Mega.download_to_fileobj`."""
    from ..transfer import download_to_fileobj as engine_download

    source = _sources.resolve_file(core, file)
    _sources.fetch_checked(core, source)
    engine_download(
        core.http,
        _sources.url_getter(core, source),
        source.size,
        source.key,
        fileobj,
        config=_config(core, config),
        progress=progress,
    )
    return source.size


def open_remote(core: Core, file: NodeRef | str, config: TransferConfig | None) -> Any:
    """:meth:`Mega.open`."""
    from ..transfer import open_reader

    source = _sources.resolve_file(core, file)
    _sources.fetch_checked(core, source)
    return open_reader(
        core.http,
        _sources.url_getter(core, source),
        source.size,
        source.key,
        config=_config(core, config),
    )


# -- uploads -----------------------------------------------------------------------------------
def _file_identity(path: Path, st: os.stat_result) -> str:
    """A local file as it is now: a changed file (size, mtime, inode) is another upload."""
    return f"path:{path}:{st.st_size}:{st.st_mtime_ns}:{st.st_dev}:{st.st_ino}"


def _fileobj_identity(fileobj: Any, base: int, size: int | None) -> str:
    """A seekable file object from ``base``: its file when it has one, else its sampled
    fingerprint (a resume re-checks the data sent before, so a collision only costs time)."""
    fileno = getattr(fileobj, "fileno", None)
    if callable(fileno):
        try:
            st = os.fstat(fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        else:
            if stat.S_ISREG(st.st_mode):
                name = getattr(fileobj, "name", "")
                return f"{_file_identity(Path(str(name)), st)}:{base}:{size}"
    from ..crypto import fingerprint

    sample = fingerprint(fileobj, 0)  # mtime 0: the same data gives the same id every time
    end = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(base)
    return f"fileobj:{sample}:{base}:{size}:{end}"


def _resume_id(core: Core, parent: str, name: str, identity: str) -> str:
    """What makes two uploads "the same" for resuming: server, account, destination and
    the source's identity (the transfer engine keeps only a digest of it)."""
    creds = core.require_login()
    who = creds.user_handle or creds.email or ""
    return "\0".join(("megafast-upload", core.api_url, who, parent, name, identity))


def upload(
    core: Core,
    filename: str | os.PathLike[str],
    dest: Any,
    dest_filename: str | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    resume: bool,
    pictures: bool = False,
) -> dict[str, Any]:
    """:meth:`Mega.upload`; ``pictures``: make a thumbnail and a preview (images, videos)."""
    from ..crypto import fingerprint

    path = Path(filename)
    if not path.is_file():
        raise SourceNotFoundError(f"no such file to upload: {path}")
    core.require_login()
    parent = _nodeops.folder_handle(core, dest)
    try:
        st = path.stat()
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {path}: {exc.strerror}") from None
    name = dest_filename or path.name
    attrs = {"n": name, "c": fingerprint(path, int(st.st_mtime))}
    resume_id = _resume_id(core, parent, name, _file_identity(path.resolve(), st))
    rid = resume_id if resume else None
    pics = start_pictures(path, pictures)
    return upload_source(core, path, st.st_size, parent, attrs, progress, config, rid, pics)


def upload_fileobj(
    core: Core,
    fileobj: Any,
    name: str,
    dest: Any,
    size: int | None,
    mtime: float | None,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    resume: bool,
    pictures: bool = False,
) -> dict[str, Any]:
    """:meth:`Mega.upload_fileobj`; ``pictures``: a thumbnail and a preview for an image
    (see :func:`~megafast.media._remote.fileobj_pictures`)."""
    from ..crypto import fingerprint

    if not isinstance(name, str) or not name or "/" in name:
        raise ValidationError("name must be a non-empty string without '/'")
    core.require_login()
    parent = _nodeops.folder_handle(core, dest)
    attrs: dict[str, Any] = {"n": name}
    stamp = int(time.time() if mtime is None else mtime)
    if isinstance(fileobj, (bytes, bytearray, memoryview)):
        data = bytes(fileobj)
        attrs["c"] = fingerprint(io.BytesIO(data), stamp)
        digest = f"bytes:{len(data)}:{hashlib.sha256(data).hexdigest()}"
        resume_id = _resume_id(core, parent, name, digest) if resume else None
        pics = fileobj_pictures(name, data, pictures)
        return upload_source(
            core, data, len(data), parent, attrs, progress, config, resume_id, pics
        )
    identity: str | None = None
    seekable = getattr(fileobj, "seekable", None)
    if callable(seekable) and seekable():
        base = fileobj.tell()
        if base == 0:
            attrs["c"] = fingerprint(fileobj, stamp)  # seeks around, then back to the start
            fileobj.seek(0)
        identity = _fileobj_identity(fileobj, base, size)
    resume_id = _resume_id(core, parent, name, identity) if resume and identity else None
    pics = fileobj_pictures(name, fileobj, pictures)
    return upload_source(core, fileobj, size, parent, attrs, progress, config, resume_id, pics)


def upload_source(
    core: Core,
    source: Any,
    size: int | None,
    parent: str,
    attrs: dict[str, Any],
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    resume_id: str | None = None,
    pictures: PendingPictures | None = None,
) -> dict[str, Any]:
    """Upload ``source`` with the engine, then create its node under ``parent`` (with the
    thumbnail and preview of ``pictures`` when they could be made)."""
    from ..transfer import TransferConfig, upload_file

    cfg = _config(core, config)
    if resume_id is None:
        # no stable id: no sidecar either (the engine would key one by the path alone)
        cfg = dataclasses.replace(cfg if cfg is not None else TransferConfig(), resume=False)

    def get_upload_url(size: int) -> str:
        return _sources.checked_u_answer(core.request({"a": "u", "s": size}))

    result = upload_file(
        core.http,
        get_upload_url,
        source,
        size,
        config=cfg,
        progress=progress,
        resume_id=resume_id,
        on_key=store_ahead(pictures, core.batch, core.http),
    )
    key = FileKey.unpack(result.key).packed
    item = {"h": result.token, "t": NodeType.FILE.value, "a": _nodeops.encrypt_attrs(attrs, key)}
    fa = pictures.store(core.batch, core.http, words_to_bytes(fold(key))) if pictures else None
    if fa:
        item["fa"] = fa
    return _nodeops.put_node(core, parent, item, key)  # type: ignore[no-any-return]


@dataclasses.dataclass
class LocalTree:
    """What a folder upload takes from a local folder: ``folders`` (POSIX paths relative to
    the top, ``"."`` first, parents before children), ``files`` ((path, relative path) of
    each regular file) and ``skipped`` ((path, why) of each entry left out: symlinks unless
    followed, special files, folders that cannot be read, links that loop)."""

    folders: list[str]
    files: list[tuple[Path, str]]
    skipped: list[tuple[Path, str]]

    @property
    def symlinks(self) -> int:
        """How many of the skipped entries are symlinks that were not followed."""
        return sum(1 for _, why in self.skipped if why == _SYMLINK)


_SYMLINK = "a symlink (not followed)"


def local_tree(top: Path, follow_symlinks: bool = False) -> LocalTree:
    """Walk ``top`` for a folder upload (sorted, so the same folder gives the same order).

    Symlinks are skipped unless ``follow_symlinks``; then a link to a folder that is already
    part of the walk (a loop) is skipped instead of walked again."""
    tree = LocalTree(["."], [], [])
    seen: set[tuple[int, int]] = set()

    def unreadable(exc: OSError) -> None:
        tree.skipped.append((Path(exc.filename or top), f"cannot read it: {exc.strerror}"))

    for here, dirnames, filenames in os.walk(top, onerror=unreadable, followlinks=follow_symlinks):
        rel_dir = Path(here).relative_to(top)
        try:
            st = os.stat(here)
        except OSError:
            st = None
        if st is not None:
            seen.add((st.st_dev, st.st_ino))
        keep: list[str] = []
        for name in sorted(dirnames):
            path = Path(here) / name
            why = _skip_folder(path, follow_symlinks, seen)
            if why is None:
                keep.append(name)
                tree.folders.append((rel_dir / name).as_posix())
            else:
                tree.skipped.append((path, why))
        dirnames[:] = keep
        for name in sorted(filenames):
            path = Path(here) / name
            if path.is_symlink() and not follow_symlinks:
                tree.skipped.append((path, _SYMLINK))
            elif not path.is_file():
                tree.skipped.append((path, "not a regular file (or a broken symlink)"))
            else:
                tree.files.append((path, (rel_dir / name).as_posix()))
    return tree


def _skip_folder(path: Path, follow: bool, seen: set[tuple[int, int]]) -> str | None:
    """Why the sub-folder ``path`` is not walked, or None."""
    if not path.is_symlink():
        return None
    if not follow:
        return _SYMLINK
    try:
        st = path.stat()
    except OSError as exc:
        return f"a symlink that cannot be followed: {exc.strerror}"
    if (st.st_dev, st.st_ino) in seen:
        return "a symlink to a folder already in this upload (a loop)"
    seen.add((st.st_dev, st.st_ino))
    return None


def upload_folder(
    core: Core,
    directory: str | os.PathLike[str],
    dest: Any,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    resume: bool,
    out: TransferResult | None = None,
    watchers: Iterable[TransferSubscriber] = (),
    follow_symlinks: bool = False,
    pictures: bool = False,
) -> dict[str, str]:
    """:meth:`Mega.upload_folder` through a :class:`~megafast.transfer.TransferManager`:
    ``{relative path: handle}`` of the folders and of the files uploaded or already there.
    ``follow_symlinks`` walks through symlinks (:func:`local_tree`) and uploads one file at
    a time (not yet through the manager)."""
    if follow_symlinks:
        return _upload_folder_following(core, directory, dest, progress, config, resume, pictures)
    from ..transfer import TransferConfig
    from .treejobs import upload_tree

    conf = _config(core, config)
    if not resume:
        conf = dataclasses.replace(conf or TransferConfig(), resume=False)
    with _tree_manager(core, None, progress, conf, watchers) as manager:
        result = upload_tree(manager, directory, dest, result=out, pictures=pictures)
    if progress is not None and not result.total_files:
        progress(0, 0)
    handles = dict(result.folders)
    handles.update((o.rel, o.result) for o in (*result.succeeded, *result.skipped) if o.result)
    result.raise_for_failures()  # after every other file was transferred
    return handles


def _upload_folder_following(
    core: Core,
    directory: str | os.PathLike[str],
    dest: Any,
    progress: ProgressCallback | None,
    config: TransferConfig | None,
    resume: bool,
    pictures: bool = False,
) -> dict[str, str]:
    """:meth:`Mega.upload_folder` with ``follow_symlinks``: the walk of :func:`local_tree`
    (symlink cycles cut), then one file at a time."""
    top = Path(directory)
    if not top.is_dir():
        raise SourceNotFoundError(f"no such folder to upload: {top}")
    core.require_login()
    walked = local_tree(top, True)
    for path, why in walked.skipped:
        logger.warning("%s: skipped, %s", path, why)
    files, folders = walked.files, walked.folders
    sizes = [p.stat().st_size for p, _ in files]
    total = sum(sizes)
    handles: dict[str, str] = {}
    for rel in folders:
        if rel == ".":
            parent, name = _nodeops.folder_handle(core, dest), top.resolve().name
        else:
            head, _, name = rel.rpartition("/")
            parent = handles[head or "."]
        handles[rel] = _nodeops.existing_or_new_folder(core, parent, name)
    done_before = 0
    for (path, rel), size in zip(files, sizes, strict=True):
        head, _, _ = rel.rpartition("/")
        step = None
        if progress is not None:
            base = done_before

            def step(done: int, _total: int, base: int = base) -> None:
                progress(base + done, total)

        answer = upload(core, path, handles[head or "."], None, step, config, resume, pictures)
        handles[rel] = _nodeops.new_handle(answer)
        done_before += size
    if progress is not None and not files:
        progress(0, 0)
    return handles
