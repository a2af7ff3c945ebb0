"""The account's own records: quota, storage, balance and contacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UnexpectedAnswerError, ValidationError
from .shares import EMAIL_RE

if TYPE_CHECKING:
    from .core import Core

__all__ = ["quota_mib", "storage_space", "balance", "edit_contact"]

_UNITS = {"giga": 1 << 30, "mega": 1 << 20, "kilo": 1 << 10}


def _number(answer: Any, field: str) -> float:
    """A number from an API answer; UnexpectedAnswerError (never KeyError) when it is missing."""
    value = answer.get(field) if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnexpectedAnswerError(f"the answer has no number {field!r}")
    return value


def quota_mib(core: Core) -> float:
    """Total storage in MiB (mega.py's figure)."""
    core.require_login()
    answer = core.request({"a": "uq", "xfer": 1, "strg": 1, "v": 1})
    return _number(answer, "mstrg") / _UNITS["mega"]


def storage_space(core: Core, giga: bool, mega: bool, kilo: bool) -> dict[str, float]:
    """``{'used': ..., 'total': ...}`` in bytes, or in GiB/MiB/KiB with one flag."""
    flags = {"giga": giga, "mega": mega, "kilo": kilo}
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise ValidationError("Only one unit prefix can be specified")
    unit = _UNITS[chosen[0]] if chosen else 1
    core.require_login()
    answer = core.request({"a": "uq", "xfer": 1, "strg": 1})
    return {"used": _number(answer, "cstrg") / unit, "total": _number(answer, "mstrg") / unit}


def balance(core: Core) -> Any:
    """The account balance (Pro accounts), or None."""
    core.require_login()
    answer = core.request({"a": "uq", "pro": 1})
    return answer.get("balance") if isinstance(answer, dict) else None


def edit_contact(core: Core, email: str, add: bool) -> Any:
    """Add (``add``) or remove a contact by email."""
    if not isinstance(add, bool):
        raise ValidationError("add parameter must be of type bool")
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise ValidationError("add_contact requires a valid email address")
    core.require_login()
    return core.request({"a": "ur", "u": email, "l": "1" if add else "0", "i": core.request_id})
