"""Build the optional native crypto core ``megafast.crypto._native`` (Cython + C).

Project metadata lives in pyproject.toml; this file only adds the extension.

- ``MEGAFAST_NO_EXTENSIONS=1``: build nothing (pure-Python install).
- ``MEGAFAST_REQUIRE_EXTENSIONS=1``: a failed native build is an error (CI uses it).
- Otherwise a failed build (no compiler, no Cython, compile error) falls back to the
  pure-Python backend with a loud warning.

One build runs on every x86-64 CPU: no ``-march=native``; the AES-NI, VAES and SHA-NI code
carries per-function target attributes and is chosen at run time by CPUID.
"""

from __future__ import annotations

import os
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CRYPTO = os.path.join("src", "megafast", "crypto")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


NO_EXTENSIONS = _flag("MEGAFAST_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("MEGAFAST_REQUIRE_EXTENSIONS")


def _warn(reason: str) -> None:
    bar = "*" * 78
    sys.stderr.write(
        f"\n{bar}\nWARNING: megafast's native crypto extension was NOT built:\n  {reason}\n"
        "megafast will use its pure-Python backend (much slower).\n"
        "Set MEGAFAST_REQUIRE_EXTENSIONS=1 to make this an error.\n"
        f"{bar}\n\n"
    )


class OptionalBuildExt(build_ext):
    """build_ext that turns a failure into a warning unless extensions are required."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:
            flags = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wno-unused-function"]
        for ext in self.extensions:
            ext.extra_compile_args = flags + list(ext.extra_compile_args or [])
        super().build_extensions()

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # compiler missing or broken
            self._failed(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if REQUIRE_EXTENSIONS:
            raise exc
        _warn(f"{type(exc).__name__}: {exc}")


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        sys.stderr.write("megafast: MEGAFAST_NO_EXTENSIONS is set: pure-Python install\n")
        return []
    sources = [os.path.join(CRYPTO, "_native.pyx")] + sorted(
        os.path.relpath(p, HERE) for p in glob(os.path.join(HERE, CRYPTO, "csrc", "*.c"))
    )
    ext = Extension(
        "megafast.crypto._native",
        sources=sources,
        include_dirs=[os.path.join(CRYPTO, "csrc")],
        depends=glob(os.path.join(CRYPTO, "csrc", "*.h")),
    )
    try:
        from Cython.Build import cythonize

        return cythonize(
            [ext],
            compiler_directives={"language_level": 3},
            quiet=True,
        )
    except Exception as exc:  # Cython missing or the .pyx does not translate
        if REQUIRE_EXTENSIONS:
            raise
        _warn(f"Cython step failed: {type(exc).__name__}: {exc}")
        return []


setup(
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    # Sources and stale in-place builds are not package data: the wheel gets only the
    # extension that build_ext just made.
    exclude_package_data={
        "megafast.crypto": ["*.c", "*.h", "*.pyx", "*.pxd", "*.so", "*.pyd", "*.html"],
        "megafast.crypto.csrc": ["*"],
    },
)
