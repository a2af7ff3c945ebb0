"""The local side of a sync: scanning the tree (never following a symlink) and changing it
only below the sync root (folders made one level at a time, each checked not to be a link;
deletions moved into a dated ``.megafast-trash`` folder unless permanent)."""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DestinationError
from ._ignore import IgnoreRules
from ._names import local_name_problem

__all__ = ["TRASH_DIR", "LocalFile", "LocalScan", "scan_local", "LocalTree", "temp_target"]

TRASH_DIR = ".megafast-trash"
# what the transfer engine leaves beside a download in progress; never synced
_TEMP_SUFFIXES = (".megafast-part", ".megafast-part.json")


@dataclass(frozen=True)
class LocalFile:
    size: int
    mtime_ns: int

    @property
    def mtime(self) -> int:
        return self.mtime_ns // 1_000_000_000


@dataclass
class LocalScan:
    files: dict[str, LocalFile] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)  # rel -> reason
    temps: list[str] = field(default_factory=list)  # what interrupted downloads left


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def scan_local(root: Path, rules: IgnoreRules) -> LocalScan:
    """Every regular file and folder below ``root`` that the rules keep, by POSIX path
    relative to the root. Symlinks, special files, unreadable folders and names that
    cannot be stored on MEGA are listed in ``skipped`` with the reason."""
    out = LocalScan()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        problem = rules.folder_problem(rel_dir)
        if problem:
            out.skipped[rel_dir or "."] = problem
            out.dirs.discard(rel_dir)
            continue
        try:
            with os.scandir(root / rel_dir if rel_dir else root) as it:
                entries = list(it)
        except OSError as exc:
            out.skipped[rel_dir or "."] = f"cannot read folder: {exc.strerror}"
            continue
        for entry in entries:
            name = entry.name
            if not rel_dir and name == TRASH_DIR:
                continue
            rel = _join(rel_dir, name)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                out.skipped[rel] = f"cannot read: {exc.strerror}"
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
            if rules.ignored(rel, is_dir, size, link=stat.S_ISLNK(st.st_mode)):
                continue
            if stat.S_ISLNK(st.st_mode):
                out.skipped[rel] = "symbolic link (not followed)"
                continue
            if not is_dir and name.endswith(_TEMP_SUFFIXES):
                out.temps.append(rel)
                continue
            problem = local_name_problem(name)
            if problem:
                out.skipped[rel] = problem
                continue
            if is_dir:
                out.dirs.add(rel)
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                out.files[rel] = LocalFile(st.st_size, st.st_mtime_ns)
            else:
                out.skipped[rel] = "not a regular file"
    return out


def temp_target(rel: str) -> str:
    """The file a download's temporary file (or its sidecar) stands beside."""
    for suffix in sorted(_TEMP_SUFFIXES, key=len, reverse=True):
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


class LocalTree:
    """Changes to the local tree, confined to ``root``."""

    def __init__(self, root: Path, *, permanent_delete: bool = False) -> None:
        self.root = root
        self.permanent_delete = permanent_delete
        self._trash_day: Path | None = None

    def path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    def ensure_dir(self, rel: str) -> Path:
        """The folder ``rel`` below the root, made where missing; raises DestinationError
        when any part of it exists as something other than a real folder (a symlink
        planted there is never followed)."""
        here = self.root
        for part in rel.split("/") if rel else ():
            here = here / part
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                try:
                    os.mkdir(here, 0o777)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise DestinationError(f"cannot create {here}: {exc.strerror}") from None
                st = os.lstat(here)
            if not stat.S_ISDIR(st.st_mode):
                raise DestinationError(f"{here} is not a folder (a symlink or a file)")
        return here

    def clear_temp_files(self, target: Path, *, all_files: bool = False) -> None:
        """Remove what must not be used beside ``target`` where the engine writes
        (``<target>.megafast-part`` and its sidecar): anything but a regular file (a symlink
        planted there must not be written through), or everything with ``all_files`` (left
        over by a download killed after it had put the file in place)."""
        for suffix in _TEMP_SUFFIXES:
            temp = target.with_name(target.name + suffix)
            try:
                st = os.lstat(temp)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                raise DestinationError(f"{temp} is a folder")
            if all_files or not stat.S_ISREG(st.st_mode):
                os.unlink(temp)

    def _trash_folder(self) -> Path:
        if self._trash_day is None:
            day = time.strftime("%Y-%m-%d")
            self._trash_day = self.ensure_dir(f"{TRASH_DIR}/{day}")
        return self._trash_day

    def _trash_target(self, rel: str) -> Path:
        """A free path for ``rel`` in today's trash folder (numbered when taken)."""
        trash = self._trash_folder()
        head, _, name = rel.rpartition("/")
        folder = (
            self.ensure_dir(f"{trash.relative_to(self.root).as_posix()}/{head}") if head else trash
        )
        target = folder / name
        n = 1
        while os.path.lexists(target):
            stem, dot, ext = name.rpartition(".")
            target = folder / (f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})")
            n += 1
        return target

    def remove(self, rel: str) -> None:
        """Delete the file or folder ``rel``: into ``.megafast-trash/<date>/rel`` (a numbered
        name when that exists already), or for good with ``permanent_delete``."""
        head, _, name = rel.rpartition("/")
        source = self.ensure_dir(head) / name
        st = os.lstat(source)
        if not self.permanent_delete:
            os.rename(source, self._trash_target(rel))
        elif stat.S_ISDIR(st.st_mode):
            shutil.rmtree(source)  # does not follow symlinks inside
        else:
            os.unlink(source)

    def preserve(self, rel: str) -> None:
        """Keep the current content of the file ``rel`` in the trash before it is replaced
        (a hard link, or a copy where links are not possible); the file stays in place."""
        head, _, name = rel.rpartition("/")
        source = self.ensure_dir(head) / name
        if not stat.S_ISREG(os.lstat(source).st_mode):
            raise DestinationError(f"{source} is not a regular file")
        target = self._trash_target(rel)
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, target, follow_symlinks=False)
