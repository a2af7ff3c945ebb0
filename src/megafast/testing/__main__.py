"""``python -m megafast.testing``: serve the MEGA emulator until stopped."""

import sys

from ._serve import serve_main

sys.exit(serve_main())
