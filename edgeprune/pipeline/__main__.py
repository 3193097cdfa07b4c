import sys

from edgeprune.pipeline.cli import main

sys.exit(main())
