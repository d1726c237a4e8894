"""``python -m infoprobe`` (also how ``torchrun -m infoprobe train ...`` starts)."""

import sys

from infoprobe.cli import main

sys.exit(main())
