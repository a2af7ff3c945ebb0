"""Walks over a listing that a hostile server wrote: each one ends, whatever the parents say.

A node names its parent by handle (``p``), so a listing can put a folder inside its own
sub-folder (a cycle) or name parents that are not in it. :func:`ancestors` climbs from a node
and raises :class:`~megafast.errors.TreeError` naming the handles of a cycle; :func:`one_top`
checks that a public folder's listing is one tree; :func:`cycle_error` names the cycle a
walk came round. :class:`~megafast._tree.nodes.NodeTree` walks through these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import TreeError

__all__ = ["ancestors", "cycle_error", "one_top", "parent_of"]

Nodes = Mapping[str, dict[str, Any]]


def parent_of(node: Mapping[str, Any]) -> str:
    """The parent handle ("" for none or for a value that is not a handle)."""
    p = node.get("p")
    return p if isinstance(p, str) else ""


def ancestors(nodes: Nodes, handle: str) -> Iterator[dict[str, Any]]:
    """The node ``handle`` and its parents, nearest first, as far as ``nodes`` goes;
    :class:`TreeError` when a folder turns out to lie inside itself."""
    seen: dict[str, int] = {}
    chain: list[str] = []
    h = handle
    while h in nodes:
        if h in seen:
            raise _cycle(chain[seen[h] :] + [h])
        seen[h] = len(chain)
        chain.append(h)
        node = nodes[h]
        yield node
        h = parent_of(node)


def cycle_error(nodes: Nodes, handle: str) -> TreeError:
    """The error for a folder ``handle`` that lies inside its own sub-folder."""
    try:
        for _ in ancestors(nodes, handle):
            pass
    except TreeError as exc:
        return exc
    return TreeError(f"the listing is not a tree at {handle}", (handle,))


def one_top(nodes: Nodes, below: Callable[[str], Iterable[dict[str, Any]]]) -> str:
    """The one node of ``nodes`` (not empty) whose parent is not among them, when all of them
    form one tree below it (``below(h)``: every node under ``h``); :class:`TreeError`
    naming the nodes otherwise: several tops (dangling parents), or nodes in a cycle."""
    tops = [h for h, node in nodes.items() if parent_of(node) not in nodes]
    if len(tops) > 1:
        shown = ", ".join(f"{h} (parent {parent_of(nodes[h]) or 'none'})" for h in tops[:8])
        raise TreeError(
            f"the listing is not one tree: {len(tops)} nodes have a parent that is not in it: "
            f"{shown}",
            tuple(tops),
        )
    reached = {tops[0], *(n["h"] for n in below(tops[0]))} if tops else set()
    if len(reached) < len(nodes):
        raise cycle_error(nodes, next(h for h in nodes if h not in reached))
    return tops[0]


def _cycle(handles: list[str]) -> TreeError:
    shown = " -> ".join(handles[:8]) + (" -> ..." if len(handles) > 8 else "")
    return TreeError(
        f"the listing is not a tree: a folder lies inside its own sub-folder ({shown}; "
        "each one's parent is the next)",
        tuple(dict.fromkeys(handles)),
    )
