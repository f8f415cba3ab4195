"""`python -m ganforge ...`: the CLI, also as torchrun runs it (torchrun -m ganforge train ...)."""

import sys

from ganforge.cli import main

sys.exit(main())
