"""Shares and share keys: who else can read a node, and the keys they need.

A folder shared with users or exported as a public link has a 16-byte share key. Every node
below it carries its own key wrapped with that share key, so:

- a new node under shares gets ``cr`` with its key under each share key (:func:`keys_for_new_node`);
- a subtree moved under shares it was not in yet gets its keys under the new ones
  (:func:`keys_for_moved_subtree`);
- :func:`share_folder` sends ``s2`` with the share key (RSA-encrypted for a user) and every
  key below the folder under it.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from .._tree.nodes import NodeType
from .._wire.codec import b64_bytes, b64encode, bytes_to_words, words_to_bytes
from .._wire.rsa import rsa_encrypt_key
from ..errors import UnexpectedAnswerError, ValidationError, WrongKeyError, error_for_code

if TYPE_CHECKING:
    from .core import Core

__all__ = ["keys_for_new_node", "keys_for_moved_subtree", "share", "unshare", "share_folder"]

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GUARD = 10_000  # a parent chain longer than this is a loop in a hostile listing


def _wrapped(key: tuple[int, ...], under: tuple[int, ...]) -> str:
    """``key`` AES-encrypted with the 4-word ``under``, as base64url."""
    from ..crypto import encrypt_key

    return b64encode(words_to_bytes(encrypt_key(key, under)))


def share_handles_above(core: Core, handle: str | None) -> list[str]:
    """Handles of the shares (with a known key) at or above ``handle``."""
    tree, keyring = core.loaded_tree, core.keyring
    found: list[str] = []
    guard = 0
    while handle and tree is not None and keyring is not None and guard < _GUARD:
        if handle in keyring.share_keys:
            found.append(handle)
        parent = tree.nodes.get(handle)
        handle = parent.get("p") if parent is not None else None
        guard += 1
    return found


def _share_words(core: Core, share: str) -> tuple[int, ...]:
    assert core.keyring is not None
    return bytes_to_words(core.keyring.share_keys[share])


def keys_for_new_node(core: Core, parent: str, key: tuple[int, ...], item: str) -> list[Any] | None:
    """``cr`` for a new node under ``parent``: [[share handles], [item], [s, 0, key]...]
    (the item is the upload token or temporary handle, as MEGA's SDK sends it)."""
    if core.keyring is None:
        return None
    shares = share_handles_above(core, parent)
    triples: list[Any] = []
    for si, share in enumerate(shares):
        triples += [si, 0, _wrapped(key, _share_words(core, share))]
    return [shares, [item], triples] if shares else None


def keys_for_moved_subtree(core: Core, node: dict[str, Any], target: str) -> list[Any] | None:
    """``cr`` for a subtree moved under shares it was not in yet: every node's key under
    each new share key, so that the people it is shared with can read them."""
    assert core.loaded_tree is not None and core.keyring is not None
    old = set(share_handles_above(core, node.get("p")))
    new = [h for h in share_handles_above(core, target) if h not in old]
    if not new:
        return None
    items = [n for n in (node, *core.loaded_tree.descendants(node["h"])) if "key" in n]
    triples: list[Any] = []
    for si, share in enumerate(new):
        share_words = _share_words(core, share)
        for ni, item in enumerate(items):
            triples += [si, ni, _wrapped(item["key"], share_words)]
    return [new, [n["h"] for n in items], triples]


def check_share_results(answer: Any) -> None:
    """``s2`` answers ``{"r": [result per target]}``: raise the first negative one."""
    results = answer.get("r") if isinstance(answer, dict) else None
    for code in results if isinstance(results, list) else ():
        if isinstance(code, int) and code < 0:
            raise error_for_code(code)


def _folder(core: Core, folder: Any) -> dict[str, Any]:
    node = core.node(folder, "folder")
    if node.get("t") != NodeType.FOLDER:
        raise ValidationError("only folders can be shared")
    return node


def _public_key(core: Core, email: str) -> tuple[int, int]:
    """A user's RSA public key (n, e) from ``uk``; a key of a silly size is refused."""
    from ..crypto import decode_mpis

    answer = core.request({"a": "uk", "u": email})
    pubk = answer.get("pubk") if isinstance(answer, dict) else None
    raw = b64_bytes(pubk) if isinstance(pubk, str) else None
    try:
        if not isinstance(raw, bytes):
            raise ValueError("no key")
        modulus, exponent = decode_mpis(raw, 2)
    except (ValueError, TypeError):
        raise UnexpectedAnswerError("the server sent no usable public key") from None
    if modulus.bit_length() < 512 or exponent < 3:
        raise UnexpectedAnswerError("the server sent no usable public key")
    return modulus, exponent


def share(core: Core, folder: Any, email: str, access: int) -> Any:
    """:meth:`Mega.share`."""
    if isinstance(access, bool) or access not in (0, 1, 2):
        raise ValidationError("access must be 0 (read-only), 1 (read-write) or 2 (full)")
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise ValidationError("share() needs the email address of a MEGA user")
    node = _folder(core, folder)
    public_key = _public_key(core, email.lower())
    return share_folder(core, node, {"u": email.lower(), "r": access}, public_key=public_key)


def unshare(core: Core, folder: Any, email: str) -> Any:
    """:meth:`Mega.unshare`."""
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise ValidationError("unshare() needs the email address of a MEGA user")
    node = _folder(core, folder)
    answer = core.request(
        {"a": "s2", "n": node["h"], "s": [{"u": email.lower()}], "i": core.request_id}
    )
    check_share_results(answer)
    return answer


def share_folder(
    core: Core,
    node: dict[str, Any],
    target: dict[str, Any] | None = None,
    public_key: tuple[int, int] | None = None,
) -> Any:
    """``s2`` for ``node`` with ``target`` (default: the public, ``EXP``); the share key
    goes to a user RSA-encrypted with ``public_key`` (n, e)."""
    if "key" not in node:
        raise WrongKeyError("this folder cannot be decrypted, so it cannot be shared")
    tree = core.tree()
    master = core.master_key
    existing = node.get("shared_folder_key")
    share_key = words_to_bytes(existing) if existing is not None else secrets.token_bytes(16)
    share_words = bytes_to_words(share_key)
    h = node["h"]
    handles = [h]
    # every node below gets its key under the share key, so link holders can read it
    cr_keys: list[Any] = [0, 0, _wrapped(node["key"], share_words)]
    for child in tree.descendants(h):
        if "key" not in child:
            continue
        handles.append(child["h"])
        cr_keys += [0, len(handles) - 1, _wrapped(child["key"], share_words)]
    target = dict(target) if target is not None else {"u": "EXP", "r": 0}
    if public_key is not None:
        target["k"] = b64encode(rsa_encrypt_key(share_key, *public_key))
    answer = core.request(
        {
            "a": "s2",
            "n": h,
            "s": [target],
            "i": core.request_id,
            "ok": _wrapped(share_words, master),
            "ha": _wrapped(bytes_to_words((h + h).encode("ascii")), master),
            "cr": [[h], handles, cr_keys],
        }
    )
    check_share_results(answer)
    assert core.keyring is not None
    core.keyring.share_keys[h] = share_key
    node["shared_folder_key"] = share_words
    if target["u"] == "EXP":
        core.exported.add(h)
    return answer
