"""``python -m normbench``: the ``normbench`` command (how the supervisor starts its children)."""

import sys

from .cli.main import main

sys.exit(main())
