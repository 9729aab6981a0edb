"""CDAE on foursquare, evaluated on held-out users with an 80/20 fold-in (Recall@20 / NDCG@20).

Usage: python examples/cdae_foursquare.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model cdae --dataset foursquare --output runs/cdae-foursquare".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
