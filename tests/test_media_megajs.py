"""An independent client's thumbnails: megajs (the npm package, run with Node) uploads a file
with a thumbnail and a preview (``ufa``, a POST to ``<url>/<type>``, ``fa`` in ``p``) and
attaches one to an existing file (``pfa``); megafast reads back exactly what megajs sent.

Skipped as tests/test_emulator_megajs.py is (no ``node``/``npm`` or no registry)."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from megafast import Mega  # noqa: E402
from megafast.testing import MegaEmulator  # noqa: E402
from test_emulator_megajs import megajs_dir  # noqa: E402,F401  (the fixture)

_UPLOAD_JS = r"""
const { Storage } = require('megajs')
const fs = require('fs')
const [gateway, email, password, dir] = process.argv.slice(2)
const read = (name) => fs.readFileSync(dir + '/' + name)
const storage = new Storage({ email, password, gateway })
storage.ready.then(async () => {
  const data = read('photo.bin')
  const file = await storage.upload({ name: 'js.jpg', size: data.length,
    thumbnailImage: read('thumb.jpg'), previewImage: read('preview.jpg') }, data).complete
  const plain = await storage.upload({ name: 'later.jpg', size: data.length }, data).complete
  await new Promise((ok, fail) => plain.uploadAttribute('thumbnail', read('thumb.jpg'),
    (err) => err ? fail(err) : ok()))
  process.stdout.write(JSON.stringify({ ok: true }) + '\n')
  process.exit(0)
}).catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + '\n')
  process.exit(1)
})
"""


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def test_megafast_reads_the_pictures_megajs_uploaded(
    megajs_dir: Path,  # noqa: F811
    emu: MegaEmulator,
    tmp_path: Path,
) -> None:
    emu.create_account("jspics@example.com", "pw")
    thumb, preview = _jpeg((200, 200), (200, 10, 10)), _jpeg((1000, 600), (10, 200, 10))
    (tmp_path / "thumb.jpg").write_bytes(thumb)
    (tmp_path / "preview.jpg").write_bytes(preview)
    (tmp_path / "photo.bin").write_bytes(b"the file itself" * 1000)
    script = megajs_dir / "pictures.js"
    script.write_text(_UPLOAD_JS)
    done = subprocess.run(
        ["node", str(script), emu.api_url + "/", "jspics@example.com", "pw", str(tmp_path)],
        cwd=megajs_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert lines and json.loads(lines[-1]) == {"ok": True}, done.stdout + done.stderr[-2000:]

    mega = Mega(api_url=emu.api_url).login("jspics@example.com", "pw")
    _, node = mega.find("js.jpg")
    assert mega.get_thumbnail(node) == thumb  # megajs's zero padding is cut after the JPEG
    assert mega.get_preview(node) == preview
    _, later = mega.find("later.jpg")
    assert mega.get_thumbnails([later]) == {later["h"]: thumb}
    assert mega.get_thumbnails([later], preview=True) == {}
