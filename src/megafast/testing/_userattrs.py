"""User attributes in the emulator: ``upv`` (versioned), ``up2``, ``uga`` and what ``ug`` shows.

MEGA's SDK keeps its keys in user attributes since 2023: at the first login of an account
without them it sends one ``upv`` holding ``^!keys`` (the key manager's container),
``*keyring``, ``+puEd255``, ``+puCu255``, ``+sigPubk`` and ``+sigCu255``
(MegaClient::initializekeys); later changes of ``^!keys`` (a new share key, ...) go as ``upv``
with the version they replace (KeyManager::commit). The emulator stores what it is sent (the
values are base64url text, opaque to the server) as MEGA does:

- ``{"a":"upv","<name>":["<value>"(,"<version it replaces>")],...}`` -> ``{"<name>":"<new
  version>",...}``; a version that is not the current one fails the command with ``-8``
  (EEXPIRED), which makes the SDK fetch the attribute and try again;
- ``{"a":"up2","<name>":"<value>"}`` -> ``{"<name>":"<new version>"}`` (no version check);
- ``{"a":"uga","u":<user>,"ua":"<name>"}`` -> ``{"av":"<value>","v":"<version>"}``, ``-9``
  when the attribute is not set; only ``+`` attributes (public keys, signatures) and plain ones
  (``firstname``...) of other users are readable, the rest is the owner's only (``-11``);
- ``ug`` lists the caller's own attributes as ``"<name>":{"av":...,"v":...}``;
- each change is an action packet ``{"a":"ua","u":<user>,"ua":[names],"v":[versions]}`` to
  the owner's sessions.
"""

from __future__ import annotations

import secrets
from typing import Any

from . import _crypto as C
from ._common import EACCESS, EARGS, EEXPIRED, ENOENT, ApiError, Context, ServiceBase, _get
from ._packets import packet

__all__ = ["UserAttrCommands"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_attrs(
    user TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY(user, name));
"""
_MAX_NAME = 64
_MAX_VALUE = 1 << 20  # characters of base64url per attribute
_PRIVATE = ("*", "^", "#", "%")  # readable by their owner only
_NOT_ATTRS = {"a", "i", "v"}  # fields of an upv/up2 request that are not attributes


def _check_name(name: str) -> None:
    if not 0 < len(name) <= _MAX_NAME or not name.isprintable():
        raise ApiError(EARGS)


def _check_value(value: Any) -> str:
    if not isinstance(value, str) or len(value) > _MAX_VALUE:
        raise ApiError(EARGS)
    try:
        C.b64decode(value)
    except ValueError:
        raise ApiError(EARGS) from None
    return value


class UserAttrCommands(ServiceBase):
    """``upv``, ``up2``, ``uga``; :meth:`attrs_for_ug` for ``ug``."""

    def init_user_attrs(self) -> None:
        with self.store.lock:
            self.store.db.executescript(_SCHEMA)

    def _attr(self, user: str, name: str) -> Any:
        return self.store.one(
            "SELECT value, version FROM user_attrs WHERE user=? AND name=?", user, name
        )

    def _set_attrs(self, ctx: Context, user: str, values: dict[str, str]) -> dict[str, str]:
        versions: dict[str, str] = {}
        for name, value in values.items():
            version = C.b64encode(secrets.token_bytes(8))
            self.store.execute(
                "INSERT OR REPLACE INTO user_attrs(user, name, value, version) VALUES(?,?,?,?)",
                user,
                name,
                value,
                version,
            )
            versions[name] = version
        self.changes.add(
            {user: packet("ua", ctx.i, u=user, ua=list(versions), v=list(versions.values()))}
        )
        return versions

    def cmd_upv(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        values: dict[str, str] = {}
        for name, entry in req.items():
            if name in _NOT_ATTRS:
                continue
            _check_name(name)
            if not isinstance(entry, list) or not 1 <= len(entry) <= 2:
                raise ApiError(EARGS)
            values[name] = _check_value(entry[0])
            current = self._attr(user, name)
            if len(entry) == 2:
                if not isinstance(entry[1], str):
                    raise ApiError(EARGS)
                if current is None or current["version"] != entry[1]:
                    raise ApiError(EEXPIRED)  # someone changed it since: fetch and retry
            elif current is not None:
                raise ApiError(EEXPIRED)  # a versioned attribute is replaced by its version
        if not values:
            raise ApiError(EARGS)
        return self._set_attrs(ctx, user, values)

    def cmd_up2(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        values: dict[str, str] = {}
        for name, value in req.items():
            if name in _NOT_ATTRS:
                continue
            _check_name(name)
            values[name] = _check_value(value)
        if len(values) != 1:
            raise ApiError(EARGS)
        return self._set_attrs(ctx, user, values)

    def cmd_uga(self, ctx: Context, req: dict) -> Any:
        asker = self._need_user(ctx)
        who = _get(req, "u", str)
        name = _get(req, "ua", str)
        _check_name(name)
        row = self.store.user_by_email(who) if "@" in who else self.store.user(who)
        if row is None:
            raise ApiError(ENOENT)
        if row["handle"] != asker and name.startswith(_PRIVATE):
            raise ApiError(EACCESS)
        found = self._attr(row["handle"], name)
        if found is None:
            raise ApiError(ENOENT)
        return {"av": found["value"], "v": found["version"]}

    def attrs_for_ug(self, user: str) -> dict[str, dict[str, str]]:
        """The user's attributes as ``ug`` shows them to the user."""
        return {
            r["name"]: {"av": r["value"], "v": r["version"]}
            for r in self.store.all(
                "SELECT name, value, version FROM user_attrs WHERE user=?", user
            )
        }
