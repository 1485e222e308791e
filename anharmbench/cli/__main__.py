"""``python -m anharmbench.cli``: the ``anharmbench`` command."""

import sys

from anharmbench.cli import main

sys.exit(main())
