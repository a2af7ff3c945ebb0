"""The FUSE operations of ``megafast mount`` (mfusepy, libfuse 3's high-level API).

Paths are display paths (:mod:`megafast.vfs._tree`). Reads stream through the shared
:class:`~megafast.vfs._reader.Stream`; a file's bytes never change under one handle (MEGA
makes a new node for new content), so the kernel may keep its page cache (``keep_cache``)
and a re-read is served from memory. Writes go to a private spool file and are uploaded when
the file is flushed (``close``), with MEGA's fingerprint and the file's mtime; the node they
replace goes to the Rubbish Bin. Until the upload succeeds, the spool file is listed in the
upload queue (:class:`~megafast.vfs._spool.Spool`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import OverQuotaError
from ..fs._paths import unescape_name
from ..vfs._backend import Backend, Changes
from ..vfs._growing import StreamedUpload
from ..vfs._reader import Stream
from ..vfs._spool import PendingUpload, Spool
from ._errors import as_errno, fail
from ._hint import guess_size
from ._writes import STREAM_MAX, Closing, Writing

__all__ = ["MegaOperations"]

#: What a FUSE read answers with and a write gets: any bytes-like object.
Buffer = bytes | bytearray | memoryview

log = logging.getLogger("megafast.mount")
_NS = 1_000_000_000
# utimensat's special nanosecond values, as libfuse passes them (seconds 0)
_UTIME_NOW, _UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
#: libfuse renames an open file that is removed to such a name in its folder (``hidden_name``
#: in its fuse.c), and removes that name when the last open of the file is released
_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
#: Bytes copied at a time when a file opened for writing starts from its remote content.
COPY_BLOCK = 4 << 20


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or "/", name


class MegaOperations:
    """MEGA as a filesystem (see the module doc). ``permanent``: unlink deletes for good
    instead of moving to the Rubbish Bin. mfusepy calls the methods it finds (it needs no
    base class); an ``OSError`` raised here is answered with its errno."""

    use_ns = True

    def __init__(
        self,
        backend: Backend,
        spool: Spool | None,
        *,
        read_only: bool = False,
        permanent: bool = False,
    ) -> None:
        self.backend = backend
        self.view = backend.view
        self.spool = spool
        self.read_only = read_only or backend.read_only or spool is None
        self.permanent = permanent
        self._lock = threading.Lock()
        self._handles: dict[int, Stream | Writing] = {}
        self._next_fh = 1
        self._writing: dict[str, Writing] = {}
        #: removed files still open for reading, by the name libfuse hid them under
        self._hidden: dict[str, Any] = {}
        self._fuse: Any = None
        self.uid, self.gid = os.getuid(), os.getgid()
        self.started = time.time()
        #: where it is mounted (absolute); set by :func:`~megafast.mount.run_mount`
        self.mountpoint = ""

    # -- setup and changes ----------------------------------------------------------------
    def init_with_config(self, conn_info: Any, config: Any) -> None:
        import mfusepy

        from ._fuse import raise_read_ahead_when_mounted

        ctx = mfusepy._libfuse.fuse_get_context()
        self._fuse = ctx.contents.fuse if ctx else None
        if self.mountpoint:
            raise_read_ahead_when_mounted(self.mountpoint)
        self.backend.start_watching(self.on_changes)

    def on_changes(self, changes: Changes) -> None:
        """Drop the kernel's cached entries and pages of what changed (old and new paths)."""
        if changes.reload:
            paths = set(self.view.known_paths())
        else:
            paths = set()
            for h in changes.handles:
                for path in (self.view.known_path(h), self.view.path_of(h)):
                    if path:
                        paths.add(path)
                        paths.add(_split(path)[0])
        for path in sorted(paths, key=len, reverse=True):
            self.invalidate(path)

    def invalidate(self, path: str) -> None:
        """Tell the kernel to forget its cache of ``path`` (``fuse_invalidate_path``). Never
        call it while serving a request on that path or its folder (the kernel may hold
        their locks): only from the change follower's thread."""
        if self._fuse is None:
            return
        import mfusepy

        fn = mfusepy._libfuse.fuse_invalidate_path
        fn(mfusepy.ctypes.c_void_p(self._fuse), path.encode("utf-8", "surrogateescape"))

    def destroy(self, path: str) -> None:
        """Unmount: upload what is still open for writing (kept queued if that fails)."""
        for w in list(self._writing.values()):
            try:
                self._upload(w)
            except Exception as exc:  # noqa: BLE001 - kept in the queue, reported
                log.error("upload of %s not finished; kept for the next mount: %s", w.name, exc)
            w.drop_stream("unmounted")
        if self.spool is not None:
            self.spool.drop_kept()
        self.backend.close()

    # -- lookups --------------------------------------------------------------------------
    def _handle(self, path: str | None) -> str:
        if path is None:  # an open file removed since: no path any more
            raise fail(errno.ENOENT)
        h = self.view.lookup(path)
        if h is None:
            raise fail(errno.ENOENT)
        return h

    def _folder(self, path: str) -> str:
        h = self._handle(path)
        entry = self.view.entry(h)
        if entry is None or not entry.is_dir:
            raise fail(errno.ENOTDIR)
        return h

    def _stat(self, is_dir: bool, size: int, mtime: float, ctime: float) -> dict[str, Any]:
        mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
        if self.read_only:
            mode &= ~0o222
        return {
            "st_mode": mode,
            "st_nlink": 2 if is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": 1 << 20,
            "st_mtime": int(mtime * _NS),
            "st_ctime": int(ctime * _NS),
            "st_atime": int(mtime * _NS),
            "st_uid": self.uid,
            "st_gid": self.gid,
        }

    @as_errno
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, Any]:
        item = self._handles.get(fh.fh) if fh is not None else None
        w = item if isinstance(item, Writing) else self._writing.get(path) if path else None
        if w is not None:
            return self._stat(False, w.size, w.mtime, w.mtime)
        entry = self._hidden.get(path) if path else None
        if entry is None:
            entry = self.view.entry(self._handle(path))
        if entry is None:
            raise fail(errno.ENOENT)
        return self._stat(entry.is_dir, entry.size, entry.mtime, entry.ctime)

    @as_errno
    def readdir(self, path: str, fh: Any) -> list[str]:
        h = self._folder(path)
        names = [".", ".."] + [name for name, _ in self.view.listing(h)]
        prefix = path.rstrip("/") + "/"
        shown = set(names)
        for p in list(self._writing):
            if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                name = p[len(prefix) :]
                if name not in shown:
                    names.append(name)
        return names

    @as_errno
    def statfs(self, path: str) -> dict[str, int]:
        space = self.backend.storage()
        used, total = space if space is not None else (0, 1 << 50)
        block = 4096
        free = max(0, total - used) // block
        return {
            "f_bsize": block,
            "f_frsize": block,
            "f_blocks": total // block,
            "f_bfree": free,
            "f_bavail": free,
            "f_namemax": 255,
        }

    # -- reading --------------------------------------------------------------------------
    def _new_fh(self, item: Stream | Writing) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = item
            return fh

    @as_errno
    def open(self, path: str, fi: Any) -> int:
        flags = fi.flags
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC
        if writing:
            opened = self._open_write(path, truncate=bool(flags & os.O_TRUNC))
            fi.fh = self._new_fh(opened)
            self._writing_opened(opened, fi)
            return 0
        w = self._writing.get(path)
        if w is not None:  # read back a file still being written
            w.opens += 1
            fi.fh = self._new_fh(w)
            return 0
        h = self._handle(path)
        entry = self.view.entry(h)
        if entry is None or entry.is_dir:
            raise fail(errno.EISDIR)
        fi.fh = self._new_fh(Stream(self.backend.remote_file(h)))
        fi.keep_cache = 1
        if hasattr(fi, "noflush"):  # libfuse >= 3.11: a close of a reader sends no flush
            fi.noflush = 1
        return 0

    @as_errno
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        parts = self.read_parts(path, size, offset, fi)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    @as_errno
    def read_parts(self, path: str, size: int, offset: int, fi: Any) -> Sequence[Buffer]:
        """:meth:`read` as buffers in order (views of the cached chunks: no copy); the FUSE
        layer (:mod:`._fuse`) copies them straight into the kernel's buffer."""
        item = self._handles.get(fi.fh)
        if isinstance(item, Stream):
            try:
                return item.views(offset, size)
            except OverQuotaError as exc:  # the transfer quota: no space to speak of
                log.warning("read of %s refused: %s", path, exc)
                raise fail(errno.EIO) from None
        if isinstance(item, Writing):
            return [item.read(size, offset)]
        raise fail(errno.EBADF)

    # -- writing --------------------------------------------------------------------------
    def _check_writable(self) -> Spool:
        if self.read_only or self.spool is None:
            raise fail(errno.EROFS)
        return self.spool

    def _open_write(self, path: str, *, truncate: bool, create: bool = False) -> Writing:
        spool = self._check_writable()
        w = self._writing.get(path)
        if w is not None:
            w.opens += 1
            if truncate:
                w.truncate(0)
            return w
        parent_path, display = _split(path)
        parent = self._folder(parent_path)
        existing = self.view.child(parent, display)
        if existing is not None:
            entry = self.view.entry(existing)
            if entry is not None and entry.is_dir:
                raise fail(errno.EISDIR)
        elif not create:
            raise fail(errno.ENOENT)
        name = unescape_name(display)
        fd, spool_path = spool.new_file()
        w = Writing(fd, spool_path, parent, name, existing, dirty=create or truncate)
        try:
            if existing is not None and not truncate:
                w.size = self._copy_remote(existing, fd)
                entry = self.view.entry(existing)
                if entry is not None:
                    w.mtime = entry.mtime
        except BaseException:
            os.close(fd)
            spool.discard(spool_path)
            raise
        self._writing[path] = w
        return w

    def _copy_remote(self, handle: str, fd: int) -> int:
        """Fill a spool file with the remote file's bytes (verified as they are read);
        returns their number."""
        stream = Stream(self.backend.remote_file(handle))
        pos = 0
        while True:
            data = stream.read(pos, COPY_BLOCK)
            if not data:
                return pos
            os.pwrite(fd, data, pos)
            pos += len(data)

    @as_errno
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        w = self._open_write(path, truncate=True, create=True)
        fh = self._new_fh(w)
        if fi is None:
            return fh
        fi.fh = fh
        self._writing_opened(w, fi)
        return 0

    def _writing_opened(self, w: Writing, fi: Any) -> None:
        """A file opened for writing: a write-only open bypasses the kernel's page cache
        (``direct_io``: no second copy of the bytes; such an open cannot be mapped), and an
        empty file gets a guess of its final size from its writer (:mod:`._hint`); its
        upload starts at the first write. Nothing here fails the open."""
        if (fi.flags & os.O_ACCMODE) == os.O_WRONLY:
            fi.direct_io = 1
        try:
            with w.lock:
                if w.opens != 1 or w.stream is not None or w.writes:
                    return
                if w.size == 0:
                    import mfusepy

                    w.guess = guess_size(mfusepy.fuse_get_context()[2], self.mountpoint)
        except Exception as exc:  # noqa: BLE001 - no guess: uploaded at close
            log.debug("no size guessed for %s: %s", w.name, exc)

    def _start_stream(self, w: Writing, size: int) -> StreamedUpload | None:
        """Start the upload of a file being written, guessed at ``size`` bytes: not over
        the account's free storage, nor when it cannot start (then uploaded at close). A
        kept spool file, if any, takes the bytes of a file still empty (:meth:`Spool.reuse`;
        one set to its size with ``ftruncate`` holds zeros, not a kept file's bytes)."""
        space = self.backend.storage()
        if space is not None and size > min(STREAM_MAX, space[1] - space[0]):
            return None
        spool = self.spool
        if spool is not None and w.size == 0 and (kept := spool.reuse(size)) is not None:
            fd, path = w.adopt(*kept)
            os.close(fd)
            spool.discard(path)
        try:
            return self.backend.stream_upload(w.fd, size)
        except Exception as exc:  # noqa: BLE001 - uploaded at close instead
            log.debug("the upload while writing did not start: %s", exc)
            return None

    @as_errno
    def write(self, path: str, data: Buffer, offset: int, fi: Any) -> int:
        item = self._handles.get(fi.fh)
        if not isinstance(item, Writing):
            raise fail(errno.EBADF)
        try:
            n = item.write(data, offset, self._start_stream)
            if n == len(data):
                return n
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            n = 0
        # out of space (an error, or a short write): free the kept spool files, once
        if self.spool is None or not self.spool.drop_kept():
            if n:
                return n
            raise fail(errno.ENOSPC)
        return n + item.write(memoryview(data)[n:], offset + n, self._start_stream)

    @as_errno
    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        item = self._handles.get(fh.fh) if fh is not None else None
        if isinstance(item, Writing):
            w = item
        elif path is None:
            raise fail(errno.ENOENT)
        elif path in self._writing:
            w = self._writing[path]
        else:
            w = self._open_write(path, truncate=length == 0)
            try:
                w.truncate(length)
                self._upload(w)
            finally:
                self._close_write(path, w)
            return 0
        w.truncate(length)
        return 0

    def _upload(self, w: Writing) -> None:
        """Upload the file if it changed since its last upload (one upload of a file at a
        time). Its spool file is listed in the queue first (nothing is lost if the mount
        dies); an upload that started while it was written is used when it is the file,
        else the spool file is uploaded."""
        assert self.spool is not None
        with w.upload_lock:
            if not w.dirty or w.unlinked:
                return
            seen = w.closing()
            try:
                os.fsync(w.fd)
                item = self.spool.enqueue(w.spool, w.parent, w.name, seen.mtime, w.replaces)
            except BaseException:
                if seen.streamed is not None:
                    seen.streamed.upload.abandon("the file could not be queued")
                raise
            try:
                new = self._put_streamed(w, seen, item)
                if new is None:
                    new = self._finish(item)
            except BaseException:
                if w.unlinked:  # removed meanwhile: not to be uploaded by the next mount
                    self.spool.forget(w.spool)
                raise
            with w.lock:
                removed = w.unlinked
                if not removed:
                    w.replaces = new
                w.dirty = w.writes != seen.writes  # a write during the upload: again later
            if removed:  # removed while it was uploaded: what the upload made goes too
                self.backend.remove(new, permanent=self.permanent)
                return
        # a utimens that came while the upload ran (rsync -t, cp -p from another FUSE
        # thread) only set w.mtime: carry it to the new node
        if int(w.mtime) != int(seen.mtime):
            self.backend.set_mtime(new, int(w.mtime))

    def _put_streamed(self, w: Writing, seen: Closing, item: PendingUpload) -> str | None:
        """The node of the upload that started while the file was written, or None when
        there is none (no guess, a wrong guess, a failure)."""
        if seen.streamed is None:
            return None
        result = seen.streamed.upload.result()
        if result is None:
            return None
        try:
            new = self.backend.put_uploaded(result, w.parent, w.name, seen.streamed.fingerprint)
        except Exception as exc:  # noqa: BLE001 - the spool file is uploaded instead
            log.warning(
                "%s: the node of its upload was not made (%s); uploading again", w.name, exc
            )
            return None
        self._drop_replaced(item.replaces, new, w.name)
        assert self.spool is not None
        self.spool.dequeue(item)
        return new

    def _drop_replaced(self, replaces: str | None, new: str, name: str) -> None:
        """Move the node a new upload replaces to the Rubbish Bin."""
        if replaces is not None and replaces != new and self.view.entry(replaces) is not None:
            try:
                self.backend.remove(replaces, permanent=False)
            except Exception as exc:  # noqa: BLE001 - the new node is there; say so
                log.warning("the previous version of %s stays beside it: %s", name, exc)

    def _finish(self, item: PendingUpload) -> str:
        """Upload one queued file, then move the node it replaces to the Rubbish Bin."""
        assert self.spool is not None
        new = self.backend.upload(item.spool, item.parent, item.name, item.mtime)
        self._drop_replaced(item.replaces, new, item.name)
        self.spool.dequeue(item)
        return new

    @as_errno
    def flush(self, path: str, fi: Any) -> int:
        item = self._handles.get(fi.fh)
        if isinstance(item, Writing) and item.dirty:
            self._upload(item)
        return 0

    @as_errno
    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        return self.flush(path, fi)

    @as_errno
    def release(self, path: str, fi: Any) -> int:
        with self._lock:
            item = self._handles.pop(fi.fh, None)
        if isinstance(item, Writing):
            try:
                if item.dirty and item.opens == 1:
                    self._upload(item)
            finally:
                with self._lock:  # as the hidden name of a removed file is given (_hide)
                    item.opens -= 1
                    last = item.opens <= 0
                if last:
                    self._close_write(None, item)
        return 0

    def _unregister(self, w: Writing, path: str | None = None) -> None:
        """Forget the paths of an open file (only ``path``, when given)."""
        with self._lock:
            for p, other in list(self._writing.items()):
                if other is w and (path is None or p == path):
                    del self._writing[p]

    def _close_write(self, path: str | None, w: Writing) -> None:
        self._unregister(w, path)
        w.drop_stream("closed")
        os.close(w.fd)
        assert self.spool is not None
        if not w.dirty or w.unlinked:
            self.spool.recycle(w.spool)

    @as_errno
    def utimens(self, path: str, times: Any = None) -> int:
        if times is not None and times[1] == _UTIME_OMIT:
            return 0  # only the access time: MEGA has none
        now = times is None or times[1] == _UTIME_NOW
        mtime = time.time() if now else times[1] / _NS
        w = self._writing.get(path)
        if w is not None:
            w.mtime = mtime
            if not w.dirty and not w.unlinked and w.replaces is not None:
                # already uploaded: set it there too
                self._check_writable()
                self.backend.set_mtime(w.replaces, int(mtime))
            return 0
        self._check_writable()
        h = self._handle(path)
        entry = self.view.entry(h)
        if entry is not None and not entry.is_dir and entry.mtime != int(mtime):
            self.backend.set_mtime(h, int(mtime))
        return 0

    @as_errno
    def chmod(self, path: str, mode: int) -> int:
        self._handle(path) if path not in self._writing else None
        return 0

    @as_errno
    def chown(self, path: str, uid: int, gid: int) -> int:
        self._handle(path) if path not in self._writing else None
        return 0

    # -- the namespace --------------------------------------------------------------------
    @as_errno
    def mkdir(self, path: str, mode: int) -> int:
        self._check_writable()
        parent_path, display = _split(path)
        parent = self._folder(parent_path)
        if self.view.child(parent, display) is not None:
            raise fail(errno.EEXIST)
        self.backend.mkdir(parent, unescape_name(display))
        return 0

    @as_errno
    def unlink(self, path: str) -> int:
        self._check_writable()
        if self._hidden.pop(path, None) is not None:
            return 0  # removed already, when libfuse hid it
        w = self._writing.get(path)
        if w is None or self.view.lookup(path) is not None:
            h = self._handle(path)
            entry = self.view.entry(h)
            if entry is not None and entry.is_dir:
                raise fail(errno.EISDIR)
            self.backend.remove(h, permanent=self.permanent)
        if w is not None:
            self._drop_open(w)
        return 0

    def _drop_open(self, w: Writing) -> None:
        """A file open for writing was removed (or replaced by a rename): its bytes are
        never uploaded, now or after later writes, and it leaves the upload queue."""
        self._unregister(w)
        with w.lock:
            w.unlinked = True
        w.drop_stream("unlinked")
        if self.spool is not None:
            self.spool.forget(w.spool)

    @as_errno
    def rmdir(self, path: str) -> int:
        self._check_writable()
        h = self._folder(path)
        if h == self.view.root():
            raise fail(errno.EBUSY)
        if self.view.listing(h):
            raise fail(errno.ENOTEMPTY)
        self.backend.remove(h, permanent=self.permanent)
        return 0

    @as_errno
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self._check_writable()
        new_parent_path, display = _split(new)
        if not flags and _HIDDEN.fullmatch(display) and self._hide(old, new):
            return 0
        parent = self._folder(new_parent_path)
        replaced = self._writing.get(new) if new != old else None  # open for writing
        if replaced is not None and flags & 1:  # RENAME_NOREPLACE
            raise fail(errno.EEXIST)
        w = self._writing.get(old)
        if w is not None and self.view.lookup(old) is None:  # not uploaded yet: retarget it
            target = self.view.child(parent, display)
            if target is not None and flags & 1:
                raise fail(errno.EEXIST)
            if target is not None:
                entry = self.view.entry(target)
                if entry is not None and entry.is_dir:
                    raise fail(errno.EISDIR)
            if replaced is not None:
                self._drop_open(replaced)
            self._retarget(old, new, parent, display)
            w.replaces = target  # its upload replaces what is there (that goes to the bin)
            return 0
        h = self._handle(old)
        target = self.view.child(parent, display)
        if target == h:
            return 0
        if target is not None:
            if flags & 1:  # RENAME_NOREPLACE
                raise fail(errno.EEXIST)
            entry = self.view.entry(target)
            if entry is not None and entry.is_dir and self.view.listing(target):
                raise fail(errno.ENOTEMPTY)
            self.backend.remove(target, permanent=self.permanent)
        self.backend.move(h, parent, unescape_name(display))
        if replaced is not None:
            self._drop_open(replaced)
        if w is not None:  # still open after an upload: later uploads go to the new place
            self._retarget(old, new, parent, display)
        # no fuse_invalidate_path here: the kernel holds the folders' locks during a rename
        # and updates its own entries when it succeeds (invalidating would deadlock)
        return 0

    def _hide(self, old: str, new: str) -> bool:
        """libfuse's stand-in for removing a file that is open (see ``_HIDDEN``): the file
        is removed as :meth:`unlink` removes it, under its own name, and what has it open
        goes on under ``new`` until libfuse removes that name. A file open for writing is
        never uploaded. False when ``old`` is not open (the rename is then a rename)."""
        w = self._writing.get(old)
        h = self.view.lookup(old)
        reading = h is not None and any(
            isinstance(i, Stream) and i.file.handle == h for i in list(self._handles.values())
        )
        if w is None and not reading:
            return False
        self._check_writable()
        entry = self.view.entry(h) if h is not None else None
        if h is not None:
            self.backend.remove(h, permanent=self.permanent)
        if w is not None:
            self._drop_open(w)
            with self._lock:
                if w.opens > 0:  # its handles still stat it, by the new name
                    self._writing[new] = w
        elif entry is not None:
            self._hidden[new] = entry
        return True

    def _retarget(self, old: str, new: str, parent: str, display: str) -> None:
        w = self._writing.pop(old)
        w.parent, w.name = parent, unescape_name(display)
        self._writing[new] = w
