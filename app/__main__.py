"""`python -m app ...` is `codi-lens ...`."""

import sys

from app.cli import main

sys.exit(main())
