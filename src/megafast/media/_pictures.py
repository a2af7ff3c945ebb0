"""Thumbnails and previews made as MEGA's apps make them (``GfxProc`` in MEGA's SDK).

- Thumbnail: 200x200, scaled so the shorter side is 200, then cropped: centred across, a third
  of the way down (the SDK's ``(w - 200) / 2``, ``(h - 200) / 3``). JPEG.
- Preview: scaled to fit inside 1000x1000, never upscaled. JPEG.
- The SDK's arithmetic: a 3000x2000 photo's preview is 1000x666, and the thumbnail is cut
  from the preview.
- JPEG quality 85 (baseline), EXIF orientation applied, no metadata kept (the SDK strips it
  too). A JPEG is decoded once, at the smallest DCT scale that still covers the preview;
  the preview is scaled from that by area averaging, and the thumbnail's region alone from
  the preview.

Images are read with Pillow (the ``megafast[media]`` extra) with its decompression-bomb limit
on; videos get one frame from ``ffmpeg`` when it is installed. :func:`make_pictures` never
raises for a bad input: it returns ``None`` and logs why (a bomb, a truncated file, not an
image, ffmpeg missing or failing).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "THUMBNAIL_SIZE",
    "PREVIEW_SIZE",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "available",
    "wanted",
    "make_pictures",
    "pictures_from_image",
]

logger = logging.getLogger("megafast.media")

THUMBNAIL_SIZE = 200
PREVIEW_SIZE = 1000
_QUALITY = 85
_FFMPEG_TIMEOUT = 60.0  # seconds for one frame
_READ_AT_ONCE = 64 * 1024 * 1024  # bytes of an image file handed to its decoder at a time

#: file name endings read with Pillow
IMAGE_SUFFIXES = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".bmp",
        ".webp",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".tga",
        ".ico",
    ]
)
#: file name endings read with ffmpeg (when it is installed)
VIDEO_SUFFIXES = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".wmv",
        ".flv",
        ".mpg",
        ".mpeg",
        ".3gp",
        ".ts",
        ".mts",
        ".ogv",
    ]
)


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether Pillow can be imported (pictures are made only then; asked once)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def wanted(path: str | os.PathLike[str]) -> bool:
    """Whether a file of this name gets pictures (an image, or a video when ffmpeg is here)."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    return suffix in VIDEO_SUFFIXES and shutil.which("ffmpeg") is not None


def make_pictures(path: str | os.PathLike[str]) -> tuple[bytes, bytes] | None:
    """``(thumbnail JPEG, preview JPEG)`` of the image or video at ``path``, or ``None`` (with
    a log line saying why) when they cannot be made. Never raises for a bad file."""
    path = Path(path)
    try:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            frame = _video_frame(path)
            return None if frame is None else pictures_from_image(io.BytesIO(frame), path.name)
        with open(path, "rb") as fh:
            return pictures_from_image(fh, path.name)
    except OSError as exc:
        logger.info("%s: no thumbnail (cannot read it: %s)", path.name, exc.strerror or exc)
        return None


def pictures_from_image(source: Any, label: str = "image") -> tuple[bytes, bytes] | None:
    """``(thumbnail, preview)`` JPEGs of an image file object, or ``None`` (logged) when it
    is not an image Pillow reads whole: truncated, unknown, or over Pillow's pixel limit."""
    try:
        from PIL import Image
    except ImportError:
        logger.info("%s: no thumbnail (Pillow is not installed: megafast[media])", label)
        return None
    try:
        with warnings.catch_warnings():
            # over MAX_IMAGE_PIXELS Pillow warns, over twice that it raises: both are a skip
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                turn = _TURNS.get(im.getexif().get(0x0112, 1) or 1)
                size = preview_size(im.size)
                # JPEG: decoded once, at the smallest DCT scale (1/2, 1/4, 1/8) that still
                # covers the preview; other formats ignore it
                im.draft("RGB", size)
                # read and decoded in one call (Pillow's default is 64 KB at a time): the
                # GIL is let go once, not taken back ~30 times from busy transfer threads
                im.decodermaxblock = _READ_AT_ONCE
                im.load()
                return _both(im, size, turn)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        logger.warning("%s: no thumbnail (too many pixels for Pillow's limit: %s)", label, exc)
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        # UnidentifiedImageError and "image file is truncated" are OSErrors
        logger.info("%s: no thumbnail (not an image Pillow can read: %s)", label, exc)
    return None


#: EXIF orientation -> the turn that shows the picture upright (Image.Transpose values:
#: 0 flip left-right, 1 flip top-bottom, 2 rotate 90, 3 rotate 180, 4 rotate 270,
#: 5 transpose, 6 transverse)
_TURNS = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}


def preview_size(size: tuple[int, int]) -> tuple[int, int]:
    """The preview's size for an image of ``size``: the image's own when both sides are
    under 1000, else scaled to fit inside 1000x1000 with the SDK's integer arithmetic
    (3000x2000 gives 1000x666)."""
    w, h = size
    box = PREVIEW_SIZE
    if w < box and h < box:
        return w, h
    if h > w:
        return max(1, w * box // h), box
    return box, max(1, h * box // w)


def _rgb(im: Any) -> Any:
    """``im`` as RGB; transparent parts become black, as the SDK fills them for JPEG."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        back = Image.new("RGB", rgba.size, (0, 0, 0))
        back.paste(rgba, mask=rgba.getchannel("A"))
        return back
    return im.convert("RGB")


def _jpeg(im: Any) -> bytes:
    out = io.BytesIO()
    _rgb(im).save(out, "JPEG", quality=_QUALITY)
    return out.getvalue()


def _thumbnail(im: Any) -> bytes:
    """The 200x200 crop: ``im`` as if scaled so its short side is 200, cut ``(w - 200) / 2``
    across and ``(h - 200) / 3`` down; only the cut region is resampled."""
    from PIL import Image

    w, h = im.size
    side = THUMBNAIL_SIZE
    if w < h:
        sw, sh = side, max(side, h * side // w)
    else:
        sw, sh = max(side, w * side // h), side
    left, top = (sw - side) // 2, (sh - side) // 3
    fx, fy = w / sw, h / sh
    box = (left * fx, top * fy, (left + side) * fx, (top + side) * fy)
    # area averaging when shrinking (cheaper, as smooth), bilinear when a small image grows
    shrink = Image.Resampling.BOX if fx >= 1 else Image.Resampling.BILINEAR
    return _jpeg(im.resize((side, side), shrink, box=box))


def _resizable(im: Any) -> Any:
    """``im``, palette and bilevel images as RGB (Pillow resizes those by nearest pixel)."""
    return _rgb(im) if im.mode in ("P", "1") else im


def _fit(im: Any, size: tuple[int, int]) -> Any:
    """``im`` at the preview's ``size`` (``im`` itself when it already is): whole multiples
    by :meth:`Image.reduce`, others by area averaging (a JPEG read in draft mode is under
    twice the size)."""
    from PIL import Image

    im = _resizable(im)
    w, h = im.size
    if (w, h) == size:
        return im
    n = w // size[0]
    if n > 1 and (w, h) == (size[0] * n, size[1] * n):
        return im.reduce(n)
    return im.resize(size, Image.Resampling.BOX)


def _both(im: Any, size: tuple[int, int], turn: int | None) -> tuple[bytes, bytes]:
    """(thumbnail, preview) of the decoded ``im``. The preview is made at ``size`` as the
    image is stored, then turned upright (the box is square: the same as turning first). The
    thumbnail is cut from the preview, as the SDK does, unless the preview is under 200 on
    its short side (then from the image read)."""
    preview = _fit(im, size)
    small = min(preview.size) < THUMBNAIL_SIZE
    source = _resizable(im) if small else preview
    if turn is not None:
        preview = preview.transpose(turn)
        source = source.transpose(turn) if small else preview
    return _thumbnail(source), _jpeg(preview)


def _video_frame(path: Path) -> bytes | None:
    """One frame of a video as PNG bytes, from ffmpeg (``None``, logged, when it fails)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        logger.info("%s: no thumbnail (ffmpeg is not installed)", path.name)
        return None
    command = [ffmpeg, "-nostdin", "-v", "error", "-ss", "0", "-i", os.fspath(path)]
    command += ["-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=_FFMPEG_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.info("%s: no thumbnail (ffmpeg failed: %s)", path.name, exc)
        return None
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no frame"]
        logger.info("%s: no thumbnail (ffmpeg: %s)", path.name, reason[0])
        return None
    return done.stdout
