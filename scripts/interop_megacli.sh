#!/usr/bin/env bash
# Build MEGA's megacli (meganz/sdk) from a source folder and run the interop scenario of
# scripts/interop_megacli.py against `megafast serve --tls`. For developers; CI does not run it
# (it cannot fetch the SDK). See docs/EMULATOR.md.
#
#   scripts/interop_megacli.sh SDK_SOURCE_DIR [BUILD_DIR] [-- driver options]
#
# BUILD_DIR defaults to $TMPDIR/megacli-build (kept: a second run only relinks). JOBS (default
# 2) sets the build's parallelism. Debian packages it needs: cmake g++ libcrypto++-dev
# libsodium-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev libc-ares-dev zlib1g-dev
# libicu-dev libreadline-dev. vcpkg stays off while VCPKG_ROOT is unset.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/CMakeLists.txt" ]; then
    echo "usage: $0 SDK_SOURCE_DIR [BUILD_DIR] [-- driver options]" >&2
    exit 2
fi
sdk=$(cd "$1" && pwd)
shift
build=${TMPDIR:-/tmp}/megacli-build
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
repo=$(cd "$(dirname "$0")/.." && pwd)

megacli=$build/examples/megacli/megacli
if [ ! -x "$megacli" ]; then
    mkdir -p "$build"
    (
        unset VCPKG_ROOT
        nice -n 19 cmake -S "$sdk" -B "$build" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
            -DCMAKE_BUILD_TYPE=Release \
            -DENABLE_SDKLIB_TESTS=OFF -DENABLE_SDKLIB_WERROR=OFF \
            -DUSE_FREEIMAGE=OFF -DUSE_FFMPEG=OFF -DUSE_PDFIUM=OFF -DUSE_LIBUV=OFF \
            -DENABLE_MEDIA_FILE_METADATA=OFF -DENABLE_SYNC=OFF -DENABLE_CHAT=OFF \
            -DCMAKE_CXX_STANDARD_LIBRARIES=-licui18n
        echo "building megacli in $build (about 20 minutes on 2 cores)..." >&2
        nice -n 19 cmake --build "$build" --target megacli -j "${JOBS:-2}"
    )
fi
echo "megacli: $megacli" >&2
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
exec python3 "$repo/scripts/interop_megacli.py" --megacli "$megacli" "$@"
