"""Thumbnails and previews as MEGA's apps make them, and the wire format of file attributes:
sizes, crops, no upscaling, bad images (bombs, truncated, not images), videos with ffmpeg,
``fa`` strings and fetch records that overrun their body."""

from __future__ import annotations

import io
import logging
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from megafast.errors import UnexpectedAnswerError, ValidationError  # noqa: E402
from megafast.media import (  # noqa: E402
    decrypt_attr_data,
    encrypt_attr_data,
    make_pictures,
    parse_fa,
    parse_records,
)
from megafast.media._attrs import find_attr, new_node_fa, node_aes_key  # noqa: E402
from megafast.media._pictures import pictures_from_image  # noqa: E402


def _save(path: Path, size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> Path:
    im = Image.new(mode, size)
    w, h = size
    # a vertical gradient: rows tell where a crop was taken
    im.putdata(
        [((x * 255) // w, (y * 255) // h, 90)[: len(mode)] for y in range(h) for x in range(w)]
    )  # type: ignore[misc]
    im.save(path, fmt)
    return path


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    return im


def test_photo_sizes(tmp_path: Path) -> None:
    made = make_pictures(_save(tmp_path / "p.jpg", (3000, 2000)))
    assert made is not None
    thumb, preview = map(_open, made)
    assert thumb.size == (200, 200)
    assert preview.size == (1000, 666)  # the SDK: 2000 * 1000 // 3000


def test_portrait_thumbnail_is_cropped_a_third_down(tmp_path: Path) -> None:
    made = make_pictures(_save(tmp_path / "p.png", (200, 800), "PNG"))
    assert made is not None
    thumb = _open(made[0])
    assert thumb.size == (200, 200)
    # scaled 200x800, cropped at rows 200..400 of 800: the green channel (y) starts near 64
    top_green = thumb.getpixel((100, 0))[1]  # type: ignore[index]
    assert 50 <= top_green <= 80
    assert _open(made[1]).size == (200, 800)  # smaller than 1000x1000: not upscaled


def test_small_images_are_never_upscaled(tmp_path: Path) -> None:
    made = make_pictures(_save(tmp_path / "s.gif", (40, 30), "GIF"))
    assert made is not None
    assert _open(made[1]).size == (40, 30)
    assert _open(made[0]).size == (200, 200)


def test_transparent_png_becomes_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "t.png"
    Image.new("RGBA", (300, 300), (255, 0, 0, 0)).save(path)
    made = make_pictures(path)
    assert made is not None
    assert _open(made[0]).getpixel((10, 10)) == (0, 0, 0)  # transparent parts are black


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "r.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    Image.new("RGB", (1200, 600)).save(path, exif=exif.tobytes())
    made = make_pictures(path)
    assert made is not None
    assert _open(made[1]).size == (500, 1000)


def test_decompression_bomb_is_a_logged_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _save(tmp_path / "bomb.png", (400, 400), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the warning range (x1..x2)
    with caplog.at_level(logging.INFO, "megafast.media"):
        assert make_pictures(path) is None
    assert "too many pixels" in caplog.text
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # the error range (over x2)
    assert make_pictures(path) is None


def test_a_real_bomb_header_is_refused_without_decoding(tmp_path: Path) -> None:
    # a PNG header claiming 100000 x 100000 pixels (Pillow's default limit is ~89 M pixels)
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "bomb2.png"
    path.write_bytes(body)
    assert make_pictures(path) is None


def test_truncated_and_non_images_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = _save(tmp_path / "g.jpg", (800, 600)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.jpg").write_bytes(b"hello, not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    with caplog.at_level(logging.INFO, "megafast.media"):
        for name in ("cut.jpg", "text.jpg", "empty.png", "missing.jpg"):
            assert make_pictures(tmp_path / name) is None
    assert caplog.text.count("no thumbnail") == 4


def test_pictures_from_a_file_object() -> None:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (1, 2, 3)).save(out, "PNG")
    out.seek(0)
    made = pictures_from_image(out)
    assert made is not None and _open(made[1]).size == (640, 480)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_video_frame_with_ffmpeg(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=1280x720:rate=5",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
        timeout=60,
    )
    made = make_pictures(video)
    assert made is not None
    assert _open(made[0]).size == (200, 200) and _open(made[1]).size == (1000, 562)
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 1000)
    assert make_pictures(tmp_path / "broken.mp4") is None


# -- the wire format ------------------------------------------------------------------------
def test_encrypt_pads_and_decrypt_strips_jpeg_padding() -> None:
    key = bytes(range(16))
    jpeg = b"\xff\xd8" + b"x" * 20 + b"\xff\xd9"
    enc = encrypt_attr_data(jpeg, key)
    assert len(enc) == 32
    assert decrypt_attr_data(enc, key) == jpeg
    other = b"PNG....."  # not a JPEG: kept with its padding, as MEGA's apps hand it on
    assert decrypt_attr_data(encrypt_attr_data(other, key), key) == other + bytes(8)
    with pytest.raises(ValidationError):
        encrypt_attr_data(b"", key)
    with pytest.raises(UnexpectedAnswerError):
        decrypt_attr_data(b"\0" * 17, key)


def test_parse_fa_keeps_what_it_understands() -> None:
    fa = "811:0*AAAAAAAAAAA/812:1*_____________/9:8*AQIDBAUGBwg/garbage/1:0*short/:*/0*AQIDBAUGBwg"
    attrs = parse_fa(fa)
    assert [(a.cluster, a.type) for a in attrs] == [(811, 0), (9, 8), (0, 0)]
    assert find_attr(fa, 0) is not None and find_attr(fa, 0).handle == bytes(range(1, 9))  # type: ignore[union-attr]
    assert find_attr(fa, 1) is None  # 13 characters: not an 8-byte handle
    assert parse_fa(None) == [] and parse_fa(42) == []
    assert new_node_fa({1: b"\1" * 8, 0: bytes(8)}) == "0*AAAAAAAAAAA/1*AQEBAQEBAQE"


def test_records_parse_and_overruns_are_errors() -> None:
    a, b = b"A" * 8, b"B" * 8
    body = a + struct.pack("<I", 16) + b"x" * 16 + b + struct.pack("<I", 0)
    assert parse_records(body) == {a: b"x" * 16, b: b""}
    assert parse_records(body, [b]) == {b: b""}
    assert parse_records(b"") == {}
    overrun = a + struct.pack("<I", 17) + b"x" * 16
    with pytest.raises(UnexpectedAnswerError, match="17 bytes, only 16 follow"):
        parse_records(overrun)
    with pytest.raises(UnexpectedAnswerError, match="cut short"):
        parse_records(body + b"C" * 5)
    huge = a + struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises(UnexpectedAnswerError):
        parse_records(huge)


def test_node_key_only_for_decrypted_files() -> None:
    assert node_aes_key({"t": 0, "k": (1, 2, 3, 4)}) == bytes.fromhex(
        "00000001000000020000000300000004"
    )
    assert node_aes_key({"t": 0, "k": (1, 2, 3, 4, 1, 2, 3, 4)}) == bytes(16)
    for bad in ({"t": 1, "k": (1, 2, 3, 4)}, {"t": 0}, {"t": 0, "k": False}):
        with pytest.raises(ValidationError):
            node_aes_key(bad)


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


@pytest.mark.parametrize("size", [(3000, 2000), (2000, 3000), (4000, 3000), (1200, 900)])
def test_thumbnail_is_the_sdk_crop_of_the_preview(tmp_path: Path, size: tuple[int, int]) -> None:
    """The thumbnail (only its region resampled) against the crop made the long way, from
    the whole image decoded at full size: scaled to fit 1000x1000 with the SDK's integer
    sizes, then to 200 on the short side, cut (w - 200) / 2 across and (h - 200) / 3 down."""
    path = tmp_path / "g.jpg"
    across = Image.linear_gradient("L").rotate(90)  # changes across, as down changes down
    down = Image.linear_gradient("L")
    bands = (across.resize(size), down.resize(size), Image.new("L", size, 90))
    Image.merge("RGB", bands).save(path, quality=95)
    made = make_pictures(path)
    assert made is not None
    thumb, preview = map(_open, made)
    w, h = size
    fit = (1000, h * 1000 // w) if w >= h else (w * 1000 // h, 1000)
    assert preview.size == fit
    full = Image.open(path).convert("RGB").resize(fit, Image.Resampling.BOX)
    pw, ph = fit
    sw, sh = (pw * 200 // ph, 200) if pw >= ph else (200, ph * 200 // pw)
    left, top = (sw - 200) // 2, (sh - 200) // 3
    reference = full.resize((sw, sh), Image.Resampling.BILINEAR).crop(
        (left, top, left + 200, top + 200)
    )
    assert thumb.size == (200, 200)
    assert _mean_difference(thumb, reference) < 4
    assert _mean_difference(preview, full) < 4
    # a crop off by 10 pixels is far from it (the gradient shows where it was cut)
    shifted = full.resize((sw, sh), Image.Resampling.BILINEAR).crop(
        (left + 10, top + 10, left + 210, top + 210)
    )
    assert _mean_difference(thumb, shifted) > 4 * _mean_difference(thumb, reference)
