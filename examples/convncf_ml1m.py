"""ConvNCF on ml-1m, evaluated leave-one-out against 100 sampled negatives (HR@20 / NDCG@20).

Usage: python examples/convncf_ml1m.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model convncf --dataset ml-1m --output runs/convncf-ml-1m".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
