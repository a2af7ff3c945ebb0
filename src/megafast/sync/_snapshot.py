"""A backup snapshot's nodes on MEGA: its folders in one ``p``, then its files, each a
server-side copy of the last snapshot's node (``p`` naming that node, its key kept: no
byte is sent) or a new node from an upload's token.

The files go in one ``p`` per folder (at most :data:`CHUNK` files), many commands a request.
Their keys are wrapped with the master key in one AES-ECB pass for a whole request, and
each request is sent from a helper thread while the next one is encrypted, so the client's
work and the server's overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .._account.nodeops import encrypt_attrs
from .._wire.codec import b64encode, words_to_bytes
from ..crypto import encrypt_key, random_key
from ..errors import MegaError, UnexpectedAnswerError
from ._state import Agreement, SyncState

__all__ = ["CHUNK", "Entry", "make_folders", "put_files"]

CHUNK = 2000  # files per p command
COMMANDS = 50  # p commands per request
NODES = 5000  # new nodes per request (the commands of one request hold at most this many)
AHEAD = 2  # requests encrypted before the oldest one's answer is read

# (rel, source, key, agreement): ``source`` is a node copied on the server or an upload's token
Entry = tuple[str, str, Sequence[int], Agreement]


def _wrap_all(mega: Any, keys: Sequence[Sequence[int]]) -> list[str]:
    """Each key encrypted with the master key (AES-ECB, so one pass over all of them gives
    each key's own ciphertext), as base64url."""
    if not keys:
        return []
    flat = [w for key in keys for w in key]
    wrapped = words_to_bytes(encrypt_key(flat, tuple(mega.master_key)))
    out, at = [], 0
    for key in keys:
        out.append(b64encode(wrapped[at : at + 4 * len(key)]))
        at += 4 * len(key)
    return out


def created(answer: Any, count: int) -> list[str]:
    """The handles of the ``count`` nodes a ``p`` made, from its answer."""
    made = answer.get("f") if isinstance(answer, dict) else None
    if not isinstance(made, list) or len(made) != count:
        raise UnexpectedAnswerError("unexpected answer to p")
    handles = [n.get("h") if isinstance(n, dict) else None for n in made]
    if not all(isinstance(h, str) for h in handles):
        raise UnexpectedAnswerError("unexpected answer to p (no handle)")
    return [str(h) for h in handles]


def make_folders(
    mega: Any, root: str, name: str, dirs: Iterable[str]
) -> tuple[dict[str, str], tuple[int, ...]]:
    """The snapshot folder ``name`` in ``root`` and its sub-folders in one ``p``:
    (rel -> handle, the snapshot folder's key)."""
    order = ["", *sorted(dirs, key=lambda d: (d.count("/"), d))]
    temp = {rel: f"t{i:07d}" for i, rel in enumerate(order)}
    keys = [tuple(random_key(4)) for _ in order]
    items = []
    for rel, key, wrapped in zip(order, keys, _wrap_all(mega, keys), strict=True):
        head, _, base = rel.rpartition("/")
        item = {"h": temp[rel], "t": 1, "a": encrypt_attrs({"n": base if rel else name}, key)}
        item["k"] = wrapped
        if rel:
            item["p"] = temp[head]
        items.append(item)
    answer = mega._request({"a": "p", "t": root, "n": items, "i": mega.request_id})
    return dict(zip(order, created(answer, len(items)), strict=True)), keys[0]


def _requests(
    folders: dict[str, str], entries: list[Entry]
) -> Iterator[list[tuple[str, list[int]]]]:
    """The files grouped into requests: each a list of (folder handle, entry indexes) for
    one ``p`` each."""
    by_folder: dict[str, list[int]] = {}
    for i, (rel, *_) in enumerate(entries):
        by_folder.setdefault(rel.rpartition("/")[0], []).append(i)
    batch: list[tuple[str, list[int]]] = []
    nodes = 0
    for head, picked in by_folder.items():
        for start in range(0, len(picked), CHUNK):
            part = picked[start : start + CHUNK]
            if batch and (len(batch) == COMMANDS or nodes + len(part) > NODES):
                yield batch
                batch, nodes = [], 0
            batch.append((folders[head], part))
            nodes += len(part)
    if batch:
        yield batch


def _commands(mega: Any, entries: list[Entry], batch: list[tuple[str, list[int]]]) -> list[Any]:
    """The ``p`` commands of one request."""
    wrapped = iter(_wrap_all(mega, [entries[i][2] for _, part in batch for i in part]))
    commands = []
    for target, part in batch:
        items = []
        for i in part:
            rel, source, key, agreed = entries[i]
            attrs = encrypt_attrs({"n": rel.rpartition("/")[2], "c": agreed.c}, tuple(key))
            items.append({"h": source, "t": 0, "a": attrs, "k": next(wrapped)})
        commands.append({"a": "p", "t": target, "n": items, "i": mega.request_id})
    return commands


def put_files(mega: Any, folders: dict[str, str], entries: list[Entry], state: SyncState) -> None:
    """The file nodes ``entries`` in the snapshot's ``folders`` (rel -> handle); each new
    node's agreement goes into ``state`` under its handle."""
    pending: list[tuple[list[tuple[str, list[int]]], Future[list[Any]]]] = []

    def settle(batch: list[tuple[str, list[int]]], answers: list[Any]) -> None:
        for (_, part), answer in zip(batch, answers, strict=True):
            if isinstance(answer, int):
                raise MegaError(f"the server refused the snapshot's files ({answer})")
            for i, handle in zip(part, created(answer, len(part)), strict=True):
                rel, _, _, agreed = entries[i]
                state.files[rel] = Agreement(agreed.size, agreed.mtime_ns, agreed.c, handle)

    # one request in flight at a time (the client's API session is used by one thread)
    with ThreadPoolExecutor(1, thread_name_prefix="megafast-snapshot") as sender:
        try:
            for batch in _requests(folders, entries):
                commands = _commands(mega, entries, batch)
                pending.append((batch, sender.submit(mega._batch, commands)))
                while len(pending) > AHEAD:
                    done, future = pending.pop(0)
                    settle(done, future.result())
            while pending:
                done, future = pending.pop(0)
                settle(done, future.result())
        finally:
            for _, future in pending:
                future.cancel()
