"""gitignore-style rules: which paths a sync leaves alone.

Rules come from ``.megafastignore`` in the local sync root, then from the caller's
``exclude``/``include`` patterns, in that order; the last rule that matches a path decides.
Supported, as in gitignore: ``#`` comments, blank lines, ``!`` (re-include, also what an
include pattern is), a trailing ``/`` (folders only), a ``/`` at the start or in the middle
(anchored at the sync root; otherwise the pattern matches a name at any depth), ``*``, ``?``,
``[...]``, ``**/``, ``/**`` and ``/**/``, ``\\`` escapes. A folder that is ignored is not
entered, so nothing below it can be re-included (gitignore's rule too).
Only the root's ``.megafastignore`` is read (not one per folder).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IGNORE_FILE", "IgnoreRules", "Rule"]

IGNORE_FILE = ".megafastignore"


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


class IgnoreRules:
    """The ordered rules of one sync; :meth:`ignored` asks about a root-relative POSIX path."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self.rules: list[Rule] = list(rules or ())

    @classmethod
    def build(
        cls,
        local_root: str | os.PathLike[str] | None,
        patterns: list[tuple[str, str]] | None = None,
    ) -> IgnoreRules:
        """The root's ignore file (when ``local_root`` has one) followed by ``patterns``:
        ``("exclude", pattern)`` or ``("include", pattern)`` pairs, in order."""
        rules: list[Rule] = []
        if local_root is not None:
            path = Path(local_root) / IGNORE_FILE
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                fd = -1
            if fd >= 0:
                with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
                    rules += [r for r in map(compile_rule, handle) if r is not None]
        for kind, pattern in patterns or ():
            if kind not in ("exclude", "include"):
                raise ValueError(f"a pattern is 'exclude' or 'include', not {kind!r}")
            rule = compile_rule(("!" if kind == "include" else "") + pattern)
            if rule is not None:
                rules.append(rule)
        return cls(rules)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (e.g. ``"photos/2026/a.jpg"``) is left out of the sync."""
        verdict = False
        for rule in self.rules:
            if rule.dirs_only and not is_dir:
                continue
            if rule.regex.match(rel):
                verdict = not rule.negated
        return verdict
