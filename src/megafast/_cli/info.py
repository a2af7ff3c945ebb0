"""``megafast info``: backend, kernel, CPU features, versions and where things are kept."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

__all__ = ["collect_info", "format_info"]

_DISTRIBUTIONS = ("megafast", "pycryptodome", "requests", "urllib3", "tqdm", "Cython")


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def collect_info(api_url: str) -> dict[str, Any]:
    """Facts about this installation (no network); ``api_url``: the server commands use."""
    import warnings

    import megafast

    from . import session as session_store

    with warnings.catch_warnings():
        # The fallback warning is what `info` reports anyway, as a field.
        warnings.simplefilter("ignore", RuntimeWarning)
        from megafast import crypto
        from megafast.crypto import _backend

    kernels_module = getattr(_backend, "kernels", None)
    try:
        available = list(kernels_module.available_kernels())  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a report, not a check
        available = [crypto.KERNEL]
    features = crypto.cpu_features()
    stored = session_store.load_session()
    versions = {name: _version(name) for name in _DISTRIBUTIONS}
    versions["megafast"] = versions["megafast"] or megafast.__version__
    import_error = getattr(_backend, "IMPORT_ERROR", None)

    return {
        "version": megafast.__version__,
        "backend": crypto.BACKEND,
        "kernel": crypto.KERNEL,
        "available_kernels": available,
        "native_import_error": str(import_error) if import_error else None,
        "cpu_features": {name: bool(value) for name, value in sorted(features.items())},
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()}",
        "versions": versions,
        "config_dir": str(session_store.config_dir()),
        "logged_in_as": stored.get("email") if stored else None,
        "api_url": api_url,
        "env": {
            name: os.environ[name]
            for name in ("MEGAFAST_NO_EXTENSIONS", "MEGAFAST_REQUIRE_EXTENSIONS")
            if name in os.environ
        },
        "executable": sys.executable,
    }


def format_info(facts: dict[str, Any]) -> list[str]:
    """The facts as aligned ``name: value`` lines."""
    features = [name for name, present in facts["cpu_features"].items() if present]
    backend = facts["backend"]
    if facts["native_import_error"]:
        backend += f" (native extension not loaded: {facts['native_import_error']})"
    versions = ", ".join(
        f"{name} {version}" for name, version in facts["versions"].items() if version
    )
    rows = [
        ("megafast", facts["version"]),
        ("backend", backend),
        ("kernel", facts["kernel"]),
        ("available kernels", ", ".join(facts["available_kernels"]) or "-"),
        ("CPU features", " ".join(features) or "-"),
        ("python", f"{facts['python']} on {facts['platform']}"),
        ("packages", versions),
        ("config dir", facts["config_dir"]),
        ("logged in as", facts["logged_in_as"] or "(not logged in)"),
        ("API URL", facts["api_url"]),
    ]
    rows += [(name, value) for name, value in facts["env"].items()]
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {value}" for name, value in rows]
