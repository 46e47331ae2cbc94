"""`python -m netfence` runs the command line."""

import sys

from netfence.cli.main import main

sys.exit(main())
