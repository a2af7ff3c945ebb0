"""The command implementations behind :mod:`megafast.cli` (private)."""
