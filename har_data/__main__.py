"""``python -m har_data`` entry point."""

import sys

from .cli import main

sys.exit(main())
