"""Thumbnails, previews and password-protected links (issue 22's targets).

    PYTHONPATH=src python benchmarks/bench_media.py                 # the issue's table
    PYTHONPATH=src python benchmarks/bench_media.py --photos 50 --thumbs 100   # a quick check
    PYTHONPATH=src python benchmarks/bench_media.py --thumbs 0 --bandwidth 4e6 --link-bandwidth 25e6

1. ``--photos`` JPEG photos of ``--width`` x ``--height`` uploaded as one tree with
   ``Mega.upload_folder``, without pictures and then with them (``--rounds`` times each,
   alternating, the best of each kept). Target: with <= 1.3x without.
2. ``--thumbs`` small photos of one folder, their thumbnails read with ``get_thumbnails``:
   HTTP requests counted on the client's session (API and attribute servers). Target: <= 5.
3. Opening a ``#P!`` link: the PBKDF2 and HMAC check alone, and ``get_public_url_info`` on
   it (one API request more). Target: opening <= 0.3 s.

The emulator runs in another process (``megafast serve``, ``--latency`` seconds per API
request, ``--bandwidth`` bytes/s per connection, ``--link-bandwidth`` bytes/s shared by all
connections, as a home line) with its data under ``--data-root``
(default: the system's temporary folder; the photos take ``photos x ~2.1 MB`` twice there).
On loopback the upload itself is CPU-bound (client and emulator share the cores), so the
pictures' CPU shows in full; with a cap the link is the limit and the pictures are made
while it waits. ``--bandwidth`` alone is per connection: a tree upload runs 32 files at once,
a 2 MB photo on two or three connections, so 4e6 (about 250 MB/s in all) is no cap on
loopback and 5e5 caps the whole near 30 MB/s; ``--link-bandwidth 25e6`` (200 Mbit/s) caps
the whole whatever the connections. Each row also prints the client's CPU time, and the
CPU time of one photo's pictures.
The photos are one noisy picture encoded once, made distinct by a trailer after the JPEG's
end marker (each is decoded in full).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from megafast import Mega

EMAIL, PASSWORD = "bench@example.com", "bench password"


@contextmanager
def serve(
    latency: float, data_root: Path, bandwidth: float | None = None, link: float | None = None
) -> Iterator[str]:
    """A ``megafast serve`` process with the bench account; yields its API URL."""
    data = Path(tempfile.mkdtemp(prefix="emu-media-", dir=data_root))
    cmd = [sys.executable, "-m", "megafast", "serve", "--data-dir", str(data)]
    cmd += ["--latency", str(latency), "--user", f"{EMAIL}:{PASSWORD}"]
    if bandwidth:
        cmd += ["--bandwidth", str(bandwidth)]
    if link:
        cmd += ["--link-bandwidth", str(link)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"megafast serve did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def photo_bytes(width: int, height: int, quality: int = 90) -> bytes:
    """One photo-like JPEG: shapes and a gradient under sensor-like noise (about 2.1 MB at
    3000x2000, as a 6-megapixel camera photo)."""
    from PIL import Image

    size = (width, height)
    shapes = Image.effect_mandelbrot(size, (-2.0, -1.2, 1.0, 1.2), 64).convert("RGB")
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 30).convert("RGB")
    picture = Image.blend(noise, Image.blend(shapes, gradient, 0.5), 0.7)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_photos(top: Path, count: int, data: bytes) -> None:
    top.mkdir(parents=True)
    for i in range(count):
        (top / f"IMG_{i:05d}.jpg").write_bytes(data + b"\0trailer" + str(i).encode())


def _cpu() -> float:
    """CPU seconds of this process (every thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def picture_cpu(path: Path, rounds: int = 5) -> float:
    """CPU seconds to make one photo's thumbnail and preview (the best of ``rounds``)."""
    from megafast.media import make_pictures

    best = float("inf")
    for _ in range(rounds):
        began = time.thread_time()
        if make_pictures(path) is None:
            raise SystemExit(f"no pictures could be made from {path}")
        best = min(best, time.thread_time() - began)
    return best


def timed_upload(mega: Mega, top: Path, dest_name: str, thumbnails: bool) -> float:
    dest = mega.create_folder(dest_name)[dest_name]
    began, cpu = time.perf_counter(), _cpu()
    handles = mega.upload_folder(top, dest, thumbnails=thumbnails)
    took, cpu = time.perf_counter() - began, _cpu() - cpu
    files = [rel for rel in handles if rel != "."]
    with_fa = sum(1 for rel in files if "fa" in (mega.find(handle=handles[rel]) or {}))
    print(
        f"    {'with' if thumbnails else 'without'} pictures: {took:7.2f} s, "
        f"client CPU {cpu:6.2f} s ({len(files)} files, {with_fa} with thumbnails)"
    )
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=500)
    p.add_argument("--width", type=int, default=3000)
    p.add_argument("--height", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=1, help="uploads of each kind (best kept)")
    p.add_argument("--thumbs", type=int, default=1000, help="0: the photos' row alone")
    p.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    p.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        help="bytes/s per connection (the emulator's cap; default none: loopback speed)",
    )
    p.add_argument(
        "--link-bandwidth",
        type=float,
        default=None,
        help="bytes/s all uploads share (the emulator's line; default none)",
    )
    p.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()))
    args = p.parse_args()

    from PIL import Image  # megafast[media]

    from megafast._wire.passlinks import decrypt_link

    work = Path(tempfile.mkdtemp(prefix="bench-media-", dir=args.data_root))
    try:
        with serve(args.latency, args.data_root, args.bandwidth, args.link_bandwidth) as url:
            mega = Mega(api_url=url).login(EMAIL, PASSWORD)
            caps = [f"{args.bandwidth / 1e6:g} MB/s per connection"] if args.bandwidth else []
            if args.link_bandwidth:
                caps.append(f"{args.link_bandwidth / 1e6:g} MB/s in all")
            cap = ", ".join(caps) or "none"
            print(
                f"1. {args.photos} photos {args.width}x{args.height} as a tree "
                f"(latency {args.latency} s, bandwidth cap {cap})"
            )
            data = photo_bytes(args.width, args.height)
            print(f"    one photo: {len(data) / 1e6:.1f} MB")
            top = work / "photos"
            make_photos(top, args.photos, data)
            one = picture_cpu(next(top.iterdir()))
            print(f"    thumbnail + preview of one photo: {one * 1e3:.1f} ms CPU")
            best = {False: float("inf"), True: float("inf")}
            for r in range(args.rounds):
                for pics in (False, True):
                    best[pics] = min(best[pics], timed_upload(mega, top, f"run{r}-{pics}", pics))
            ratio = best[True] / best[False]
            print(
                f"    with / without: {ratio:.2f}x (target <= 1.3x): "
                f"{'OK' if ratio <= 1.3 else 'MISSED'}"
            )
            shutil.rmtree(top)
            if args.thumbs <= 0:
                return

            print(f"2. thumbnails of {args.thumbs} files of one folder")
            small = work / "small"
            small.mkdir()
            for i in range(args.thumbs):
                Image.new("RGB", (64, 48), (i % 256, (i // 256) % 256, 99)).save(
                    small / f"{i:05d}.jpg"
                )
            dest = mega.create_folder("thumbs")["thumbs"]
            handles = mega.upload_folder(small, dest)
            nodes = [h for rel, h in handles.items() if rel != "."]
            reader = Mega(api_url=url).login(EMAIL, PASSWORD)
            reader.get_files()
            seen: list[str] = []
            reader.http.hooks["response"].append(lambda r, *a, **k: seen.append(r.url))
            began = time.perf_counter()
            got = reader.get_thumbnails(nodes)
            took = time.perf_counter() - began
            print(
                f"    {len(got)} of {len(nodes)} thumbnails in {len(seen)} HTTP requests, "
                f"{took:.2f} s (target <= 5 requests): {'OK' if len(seen) <= 5 and len(got) == len(nodes) else 'MISSED'}"
            )

            print("3. opening a #P! link")
            link = mega.get_link(nodes[0], password="a long enough password")
            began = time.perf_counter()
            decrypt_link(link, "a long enough password")
            unlock = time.perf_counter() - began
            visitor = Mega(api_url=url)
            began = time.perf_counter()
            visitor.get_public_url_info(link, password="a long enough password")
            info = time.perf_counter() - began
            print(
                f"    PBKDF2 + HMAC: {unlock:.3f} s; get_public_url_info: {info:.3f} s "
                f"(target <= 0.3 s): {'OK' if unlock <= 0.3 else 'MISSED'}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
