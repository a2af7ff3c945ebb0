"""MEGA's ``.megaignore`` files, read as MEGA's SDK reads them (its ``syncfilter.cpp``).

One rule a line; empty lines and lines starting with ``#`` are skipped; a UTF-8 BOM is
skipped; lines are NFC-normalised. A rule is::

    (+|-)[a|d|f|s][n|N|p][g|G|r|R]:PATTERN

``-`` excludes, ``+`` includes; the target is ``a`` all (the default), ``d`` folders, ``f``
files, ``s`` symbolic links; ``n`` matches the name (the default, unless the pattern holds a
``/``: then ``p``), ``N`` the name in this folder only (not inherited by sub-folders), ``p``
the path relative to the folder holding the file; ``g`` a glob ignoring case (the default),
``G`` a glob minding case, ``r``/``R`` a regular expression ignoring/minding case, matched
against the whole name or path. A glob knows ``*`` (any run of characters, ``/`` too) and
``?`` (one character); case is ignored for ASCII letters, as the SDK's ``toupper``.
Trailing white space ends the pattern. ``+sync:.megaignore`` / ``-sync:.megaignore`` say
whether the file itself is synced (the SDK's default: not).

``exclude-larger:N`` and ``exclude-smaller:N`` (``N`` bytes, or with a ``k``/``m``/``g``/``t``
suffix, powers of 1024) exclude files by size; smaller greater than larger excludes the
band between them.

A file with any line it cannot read fails as a whole (:class:`MegaIgnoreError`): the SDK
then stops syncing that folder, and so does megafast (the folder is skipped, and reported).

Deciding a path: from the folder that holds it up to the sync root, the first folder whose
``.megaignore`` has a matching rule decides; within a file the last matching rule wins;
folders above the entry's own use only inheritable rules (not ``N``), and the path a ``p``
rule sees grows by one folder name at each step up. Sizes: the nearest file with a size
rule decides.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["MEGA_IGNORE_FILE", "MegaIgnoreError", "MegaRule", "MegaFilter", "parse_megaignore"]

MEGA_IGNORE_FILE = ".megaignore"
_UNITS = {"k": 10, "m": 20, "g": 30, "t": 40}
_SIZE_RULE = re.compile(r"(exclude-larger|exclude-smaller):[ \t\v\f\r]*([0-9]+)(.*)", re.DOTALL)
_SPACE = " \t\n\v\f\r"
# a group holding a quantifier, itself quantified: (a+)+, (x*y)*, (a|b+){2,}: such patterns
# can take exponential time on a name made for it (a .megaignore may come from a shared
# folder), so they are refused
_NESTED = re.compile(r"\((?:[^()\\]|\\.)*(?:[*+]|\{\d*,?\d*\})(?:[^()\\]|\\.)*\)[*+{]")
_MAX_PATTERN = 1000


class MegaIgnoreError(ValueError):
    """A ``.megaignore`` line that MEGA's SDK would refuse (the whole file is refused)."""


@dataclass(frozen=True)
class MegaRule:
    include: bool
    target: str  # "a", "d", "f" or "s"
    by_path: bool
    inheritable: bool
    regex: re.Pattern[str]

    def applies(self, kind: str) -> bool:
        return self.target in ("a", kind)


@dataclass
class MegaFilter:
    """One ``.megaignore`` file: its rules in order, its size bounds, and whether the file
    itself is synced."""

    rules: list[MegaRule] = field(default_factory=list)
    lower: int | None = None  # exclude-smaller
    upper: int | None = None  # exclude-larger
    sync_self: bool = False

    @property
    def has_size(self) -> bool:
        return self.lower is not None or self.upper is not None

    def match(self, name: str, path: str, kind: str, inherited: bool) -> bool | None:
        """True excluded, False included, None no rule matched. ``kind``: "f", "d", "s"."""
        for rule in reversed(self.rules):
            if inherited and not rule.inheritable:
                continue
            if rule.applies(kind) and rule.regex.fullmatch(path if rule.by_path else name):
                return not rule.include
        return None

    def size_excluded(self, size: int) -> bool:
        lower = self.lower or 0
        upper = self.upper if self.upper is not None else (1 << 64) - 1
        if lower > upper:  # the band [upper, lower] is excluded
            return upper <= size <= lower
        return not lower <= size <= upper


def _glob(pattern: str, case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL if case else re.DOTALL | re.IGNORECASE | re.ASCII)


def _size_rule(line: str, f: MegaFilter) -> None:
    found = _SIZE_RULE.fullmatch(line)
    if found is None:
        raise MegaIgnoreError(f"not a size rule: {line!r}")
    directive, digits, rest = found.groups()
    limit = int(digits)
    if limit >= 1 << 64:
        raise MegaIgnoreError(f"size out of range: {line!r}")
    if rest:
        shift = _UNITS.get(rest[0].lower())
        if shift is None or rest[1:].strip(_SPACE):
            raise MegaIgnoreError(f"unknown size unit: {line!r}")
        if (limit << shift) >= 1 << 64:
            raise MegaIgnoreError(f"size out of range: {line!r}")
        limit <<= shift
    if directive == "exclude-larger":
        f.upper = limit
    else:
        f.lower = limit
    if (f.lower or 0) == (f.upper if f.upper is not None else (1 << 64) - 1):
        raise MegaIgnoreError(f"the smaller and larger bounds are equal: {line!r}")


def _string_rule(line: str, f: MegaFilter) -> None:
    if line[:1] not in ("+", "-"):
        raise MegaIgnoreError(f"a rule starts with + or -: {line!r}")
    include = line[0] == "+"
    rest = line[1:]
    if rest == "sync:.megaignore":
        f.sync_self = include
        return
    target = "a"
    if rest[:1] in ("a", "d", "f", "s"):
        target, rest = rest[0], rest[1:]
    kind = ""
    if rest[:1] in ("n", "N", "p"):
        kind, rest = rest[0], rest[1:]
    strategy = "g"
    if rest[:1] in ("g", "G", "r", "R"):
        strategy, rest = rest[0], rest[1:]
    if rest[:1] != ":":
        raise MegaIgnoreError(f"expected ':' before the pattern: {line!r}")
    pattern = rest[1:].rstrip(_SPACE)
    if not pattern:
        raise MegaIgnoreError(f"an empty pattern: {line!r}")
    by_path = kind == "p" or (kind == "" and "/" in pattern)
    case = strategy in ("G", "R")
    if strategy in ("g", "G"):
        regex = _glob(pattern, case)
    else:
        if _NESTED.search(pattern) or len(pattern) > _MAX_PATTERN:
            raise MegaIgnoreError(f"a regular expression that may take too long: {line!r}")
        try:
            regex = re.compile(pattern, 0 if case else re.IGNORECASE)
        except re.error as exc:
            raise MegaIgnoreError(f"a bad regular expression ({exc}): {line!r}") from None
    f.rules.append(MegaRule(include, target, by_path, kind != "N", regex))


def parse_megaignore(data: bytes) -> MegaFilter:
    """A ``.megaignore`` file's content as a :class:`MegaFilter`; :class:`MegaIgnoreError`
    for a file the SDK refuses."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MegaIgnoreError("the file is not UTF-8 text") from None
    found = MegaFilter()
    for raw in re.split(r"[\r\n]+", text):
        if not raw.strip(_SPACE):
            continue
        line = unicodedata.normalize("NFC", raw)
        if line.startswith("#"):
            continue
        if line.startswith("e"):
            _size_rule(line, found)
        else:
            _string_rule(line, found)
    return found
