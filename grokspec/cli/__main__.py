"""``python -m grokspec.cli``: the same as the ``grokspec`` command."""

import sys

from grokspec.cli.main import main

sys.exit(main())
