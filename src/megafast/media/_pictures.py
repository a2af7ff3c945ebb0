"""Thumbnails and previews made as MEGA's apps make them (``GfxProc`` in MEGA's SDK).

- Thumbnail: 200x200, scaled so the shorter side is 200, then cropped: centred across, a third
  of the way down (the SDK's ``(w - 200) / 2``, ``(h - 200) / 3``). JPEG.
- Preview: scaled to fit inside 1000x1000, never upscaled. JPEG.
- JPEG quality 85 (baseline), EXIF orientation applied, no metadata kept (the SDK strips it
  too). JPEGs are decoded at the smallest DCT scale that still covers the preview.

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
                im.draft("RGB", (PREVIEW_SIZE, PREVIEW_SIZE))  # JPEG: decode at 1/2, 1/4...
                im.load()
                return _both(_upright(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        logger.warning("%s: no thumbnail (too many pixels for Pillow's limit: %s)", label, exc)
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        # UnidentifiedImageError and "image file is truncated" are OSErrors
        logger.info("%s: no thumbnail (not an image Pillow can read: %s)", label, exc)
    return None


def _upright(im: Any) -> Any:
    """``im`` turned as its EXIF orientation says (no copy when it is already upright)."""
    from PIL import ImageOps

    if im.getexif().get(0x0112, 1) in (None, 1):
        return im
    return ImageOps.exif_transpose(im) or im


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
    from PIL import Image

    w, h = im.size
    side = THUMBNAIL_SIZE
    if w < h:
        sw, sh = side, max(side, h * side // w)
    else:
        sw, sh = max(side, w * side // h), side
    scaled = im.resize((sw, sh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    left, top = (sw - side) // 2, (sh - side) // 3
    return _jpeg(scaled.crop((left, top, left + side, top + side)))


def _fit(im: Any) -> Any:
    """``im`` scaled to fit inside the preview's box (``im`` itself when it fits: never
    upscaled), by area averaging (a JPEG read in draft mode is at most twice the box)."""
    from PIL import Image

    w, h = im.size
    if w <= PREVIEW_SIZE and h <= PREVIEW_SIZE:
        return im
    scale = min(PREVIEW_SIZE / w, PREVIEW_SIZE / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.BOX)


def _both(im: Any) -> tuple[bytes, bytes]:
    """(thumbnail, preview); the thumbnail comes from the preview when that is still at
    least the thumbnail's size on its short side (cheaper, and the same picture)."""
    preview = _fit(im)
    source = preview if min(preview.size) >= THUMBNAIL_SIZE else im
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
