"""``python -m exportgate.cli``."""

import sys

from exportgate.cli import main

sys.exit(main())
