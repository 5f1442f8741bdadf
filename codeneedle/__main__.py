"""``python -m codeneedle``: the ``needle`` command, where the environment's scripts folder is not on PATH."""

import sys

from codeneedle.cli import main

sys.exit(main())
