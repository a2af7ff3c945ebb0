"""``python -m megafast``: the same command line as the ``megafast`` console script."""

import sys

from megafast.cli import main

sys.exit(main())
