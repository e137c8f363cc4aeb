import sys

from exportgate.cli import main

sys.exit(main())
