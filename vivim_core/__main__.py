import sys

from vivim_core.cli import main

sys.exit(main())
