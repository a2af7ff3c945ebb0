"""``mega://`` for the Python data stack: :class:`MegaFileSystem`, an fsspec filesystem.

``pip install megafast[fsspec]`` registers it (entry point ``fsspec.specs``), so
``fsspec.filesystem("mega")``, ``pandas.read_csv("mega://...")``, Dask and pyarrow reach MEGA.
"""

from __future__ import annotations

from ._bulk import bulk_copy
from ._filesystem import MegaFileSystem
from ._paths import escape_name, unescape_name

__all__ = ["MegaFileSystem", "bulk_copy", "escape_name", "unescape_name"]
