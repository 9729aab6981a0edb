"""ConvNCF on foursquare, evaluated leave-one-out against 100 sampled negatives (HR@20 / NDCG@20).

Usage: python examples/convncf_foursquare.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

ConvNCF costs about 1.5 M MACs per (user, item) pair at the default embedding size 64 (an ML-1M epoch: about
37 minutes on a 2-core CPU): on a CPU, try ``--embedding-dim 16``, or a GPU (``--device cuda``); docs/models.md.

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model convncf --dataset foursquare --output runs/convncf-foursquare".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
