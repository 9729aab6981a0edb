import sys

from dslgraph.cli import main

sys.exit(main())
