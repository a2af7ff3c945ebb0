"""fsspec's own abstract test suites (copy, get, put, open, pipe) against the emulator."""

from __future__ import annotations

import posixpath
import uuid

import fsspec
import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests


class MegaFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, fs_options):
        return fsspec.filesystem("mega", **fs_options)

    @pytest.fixture
    def fs_path(self, fs):
        path = f"abstract-{uuid.uuid4().hex[:8]}"
        fs.makedirs(path)
        yield path
        fs.rm(path, recursive=True)

    @pytest.fixture
    def fs_join(self):
        return posixpath.join


class TestMegaCopy(MegaFixtures, AbstractCopyTests):
    pass


class TestMegaGet(MegaFixtures, AbstractGetTests):
    pass


class TestMegaPut(MegaFixtures, AbstractPutTests):
    pass


class TestMegaOpen(MegaFixtures, AbstractOpenTests):
    pass


class TestMegaPipe(MegaFixtures, AbstractPipeTests):
    pass
