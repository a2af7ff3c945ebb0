"""``megafast http``: a streaming HTTP server over the same reader and caches as the mount."""

from __future__ import annotations

from ._server import MegaHTTPServer, is_loopback, parse_range

__all__ = ["MegaHTTPServer", "is_loopback", "parse_range"]
