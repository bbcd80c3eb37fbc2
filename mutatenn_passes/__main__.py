"""`python -m mutatenn_passes` is the `mutatenn` command."""

import sys

from .cli import main

sys.exit(main())
