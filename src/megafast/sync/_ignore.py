"""Which paths a sync leaves alone: MEGA's ``.megaignore`` files (see :mod:`._megaignore`),
gitignore-style ``.megafastignore`` files, both in any folder, and the caller's patterns.

gitignore rules come from ``.megafastignore`` in every folder (each relative to its folder,
the root's first), then from the caller's ``exclude``/``include`` patterns, in that order;
the last rule that matches a path decides.
Supported, as in gitignore: ``#`` comments, blank lines, ``!`` (re-include, also what an
include pattern is), a trailing ``/`` (folders only), a ``/`` at the start or in the middle
(anchored at the sync root; otherwise the pattern matches a name at any depth), ``*``, ``?``,
``[...]``, ``**/``, ``/**`` and ``/**/``, ``\\`` escapes. A folder that is ignored is not
entered, so nothing below it can be re-included (gitignore's rule too).
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ._megaignore import MEGA_IGNORE_FILE, MegaFilter, MegaIgnoreError, parse_megaignore

__all__ = ["IGNORE_FILE", "IgnoreRules", "Rule"]

IGNORE_FILE = ".megafastignore"
_MAX_RULES_FILE = 1 << 20
# what MEGA's SDK never syncs (isDoNotSyncFileName): made by Windows Explorer and macOS
NEVER_SYNCED = frozenset({"desktop.ini", ".DS_Store", ".Spotlight-V100", "Icon\r"})


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern[str]
    negated: bool
    dirs_only: bool


def _class(pattern: str, i: int) -> tuple[str, int]:
    """Translate ``[...]`` starting at ``pattern[i] == '['``; a lone ``[`` is literal."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return re.escape("["), i + 1
    body = pattern[i + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\")
    return ("[^/" if negate else "[") + body + "]", j + 1


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            text, i = _class(pattern, i)
            out.append(text)
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def compile_rule(line: str) -> Rule | None:
    """One gitignore line as a rule, or None for blanks and comments."""
    text = line.rstrip("\n").rstrip("\r")
    # trailing spaces are dropped unless escaped with a backslash
    stripped = text.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(text):
        stripped += " "
    text = stripped
    if not text or text.startswith("#"):
        return None
    negated = text.startswith("!")
    if negated or text.startswith("\\!") or text.startswith("\\#"):
        text = text[1:]
    dirs_only = text.endswith("/") and not text.endswith("\\/")
    text = text.rstrip("/") if dirs_only else text
    if not text:
        return None
    anchored = "/" in text
    body = _translate(text.lstrip("/"))
    prefix = "" if anchored else "(?:.*/)?"
    return Rule(line, re.compile(f"^{prefix}{body}$", re.DOTALL), negated, dirs_only)


def _read_private(path: Path) -> bytes | None:
    """A regular file's bytes (never through a symlink), None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(_MAX_RULES_FILE + 1)


@dataclass
class _Folder:
    """The ignore files of one folder: gitignore rules (``.megafastignore``, matched
    against paths relative to the folder), MEGA's filter, or why the folder is skipped."""

    git: list[Rule]
    mega: MegaFilter | None
    problem: str | None = None
    has_mega_file: bool = False


class IgnoreRules:
    """The ordered rules of one sync; :meth:`ignored` asks about a root-relative POSIX path.

    Ignore files are read from the local tree, folder by folder, as paths are asked about
    (a folder's files before anything in it: the scans go top-down). For a path the rules
    come in this order, and the last that matches decides: MEGA's ``.megaignore`` files
    (their own precedence: see :mod:`._megaignore`), the ``.megafastignore`` files from the
    root down (each relative to its folder), then the caller's ``patterns``."""

    def __init__(self, rules: list[Rule] | None = None, root: Path | None = None) -> None:
        self.rules: list[Rule] = list(rules or ())
        self.root = root
        self._folders: dict[str, _Folder] = {}

    @classmethod
    def build(
        cls,
        local_root: str | os.PathLike[str] | None,
        patterns: list[tuple[str, str]] | None = None,
    ) -> IgnoreRules:
        """The ignore files below ``local_root`` (None: none) and then ``patterns``:
        ``("exclude", pattern)`` or ``("include", pattern)`` pairs, in order."""
        rules: list[Rule] = []
        for kind, pattern in patterns or ():
            if kind not in ("exclude", "include"):
                raise ValueError(f"a pattern is 'exclude' or 'include', not {kind!r}")
            rule = compile_rule(("!" if kind == "include" else "") + pattern)
            if rule is not None:
                rules.append(rule)
        return cls(rules, Path(local_root) if local_root is not None else None)

    def _folder(self, rel_dir: str) -> _Folder:
        found = self._folders.get(rel_dir)
        if found is not None:
            return found
        found = _Folder([], None)
        if self.root is not None:
            base = self.root.joinpath(*rel_dir.split("/")) if rel_dir else self.root
            text = _read_private(base / IGNORE_FILE)
            if text is not None:
                lines = text.decode("utf-8", "replace").splitlines()
                found.git = [r for r in map(compile_rule, lines) if r is not None]
            data = _read_private(base / MEGA_IGNORE_FILE)
            found.has_mega_file = data is not None
            if data is not None:
                try:
                    if len(data) > _MAX_RULES_FILE:
                        raise MegaIgnoreError("larger than 1 MiB")
                    found.mega = parse_megaignore(data)
                except MegaIgnoreError as exc:
                    found.problem = f"its {MEGA_IGNORE_FILE} cannot be read ({exc}); not synced"
        self._folders[rel_dir] = found
        return found

    def folder_problem(self, rel_dir: str) -> str | None:
        """Why the folder ``rel_dir`` (and all below it) is left alone: a ``.megaignore``
        that MEGA's SDK would refuse (the SDK stops syncing there too)."""
        return self._folder(rel_dir).problem

    def is_rules_file(self, rel: str) -> bool:
        """Whether ``rel`` is never synced: every ``.megafastignore``; a ``.megaignore``
        whose local copy does not say ``+sync:.megaignore`` (with no local copy, a remote
        one may come down, as MEGA's SDK allows); the files MEGA's SDK never syncs
        (``desktop.ini``, ``.DS_Store``, ``.Spotlight-V100``, ``Icon\r``)."""
        head, _, name = rel.rpartition("/")
        if name == IGNORE_FILE or name in NEVER_SYNCED:
            return True
        if name == MEGA_IGNORE_FILE:
            folder = self._folder(head)
            if folder.mega is None:
                return folder.has_mega_file
            return not folder.mega.sync_self
        return False

    def _mega_verdict(self, rel: str, kind: str, size: int | None) -> bool | None:
        parts = rel.split("/")
        name = unicodedata.normalize("NFC", parts[-1])
        path = name
        sized: bool | None = None
        for depth in range(len(parts) - 1, -1, -1):
            folder = self._folder("/".join(parts[:depth]))
            mega = folder.mega
            if mega is not None:
                if sized is None and size is not None and kind == "f" and mega.has_size:
                    sized = mega.size_excluded(size)
                verdict = mega.match(name, path, kind, depth != len(parts) - 1)
                if verdict is not None:
                    return True if verdict else bool(sized)
            if depth:
                path = f"{parts[depth - 1]}/{path}"
        return sized

    def ignored(self, rel: str, is_dir: bool, size: int | None = None, link: bool = False) -> bool:
        """Whether ``rel`` (e.g. ``"photos/2026/a.jpg"``) is left out of the sync; ``size``
        (bytes) for MEGA's size rules, ``link`` for its symlink rules."""
        if self.is_rules_file(rel):
            return True
        verdict = bool(self._mega_verdict(rel, "s" if link else "d" if is_dir else "f", size))
        parts = rel.split("/")
        for depth in range(len(parts)):
            git = self._folder("/".join(parts[:depth])).git if self.root is not None else []
            below = "/".join(parts[depth:])
            for rule in git:
                if rule.dirs_only and not is_dir:
                    continue
                if rule.regex.match(below):
                    verdict = not rule.negated
        for rule in self.rules:
            if rule.dirs_only and not is_dir:
                continue
            if rule.regex.match(rel):
                verdict = not rule.negated
        return verdict
