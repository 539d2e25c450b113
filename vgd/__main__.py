"""``python -m vgd``: the same command as the ``vgd`` console script."""

import sys

from vgd.cli import main

sys.exit(main())
